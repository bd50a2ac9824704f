// A member of a cluster contest (docs/PROTOCOL.md §12) for the KV lease tests, driven by its arguments; it
// reports on stdout, one line per event. <nats> is a URL; <storage> is the test's fencing storage (an HTTP server
// that takes POST /write?token=<n>&who=<pid> and answers "ok", or 409 "refused" for a token lower than the
// highest it took).
//   race <nats> <contest> <label> <witness> <seconds> <ttlMs>
//        claim (waiting), hold 0–15 ms, append "<token> <start ns> <end ns>\n" to <witness> (O_APPEND, one write;
//        start and end in ns on the machine's clock, which every process of it shares), release; again until
//        <seconds> passed; print "done <wins>"
//   chaos <nats> <contest> <label> <witness> <until> <ttlMs>
//        as race, until <until> (ms since the epoch), for a soak that kills, stops and cuts off its members: the
//        end is stamped before lease.check(), and only a lease still held then goes into the witness (a member
//        stopped past its deadline finds it lost: "lost" counts it); ContestUnavailableError (no JetStream quorum
//        while the hosts are cut apart) waits 100 ms and tries again, at open too; prints "held <token>" per win and
//        "done <wins> <lost> <unavailable>"; any other error is printed ("error <name> <message>") and exits 1
//   hold <nats> <contest> <label> <ttlMs> <renewMs> <storage>
//        claim (waiting), print "claimed <token>", write the storage, then renew every <renewMs>; when a renewal
//        fails print "lost <error name>", write the storage with the old token, print "storage <answer>", exit
//   wait <nats> <contest> <label> <ttlMs> <storage>
//        print "waiting", claim (waiting), print "claimed <token> <from> <ns on the machine's clock>" and "replaced
//        <the replaced claim's traceparent, or none>", write the storage, print "storage <answer>", then renew every
//        ttlMs / 4 until killed
// Environment: KV_MARGIN_MS, the contest's marginMs; KV_CLOCK_RATE, a factor this process's monotonic clock (and
// its timers) run at, to play a host whose clock runs fast or slow; TRACEPARENT, the claims' trace context.
import { appendFileSync } from "node:fs"
import { Contest, ContestUnavailableError, LeaseLostError } from "../../../src/leases/index.ts"
import { nats as viaNats } from "../../../src/nats/index.ts"

const now = performance.now.bind(performance)
/** ns on the machine's clock, comparable between the processes of this machine (Bun's hrtime starts per process). */
const stamp = () => BigInt(Math.round((performance.timeOrigin + now()) * 1e6))
const rate = Number(process.env.KV_CLOCK_RATE ?? 1)
if (rate !== 1) {
  const t0 = now()
  performance.now = () => t0 + (now() - t0) * rate
  const later = globalThis.setTimeout
  globalThis.setTimeout = ((f: () => void, ms = 0, ...a: unknown[]) =>
    later(f, ms / rate, ...(a as []))) as unknown as typeof setTimeout
}
const [mode, nats, name, label, ...rest] = process.argv.slice(2)
const say = (s: string) => process.stdout.write(`${s}\n`)
const subject = { kind: 9, label: label! }
const margin = process.env.KV_MARGIN_MS
const contest = await open()
async function open() {
  for (;;) {
    try {
      return await Contest.open(name!, { remote: viaNats(nats!), ...(margin ? { marginMs: Number(margin) } : {}) })
    } catch (e) {
      // a member started while the hosts are cut apart waits for JetStream as a claim does
      if (mode !== "chaos" || !(e instanceof ContestUnavailableError)) throw e
      await Bun.sleep(200)
    }
  }
}
const owner = `${mode}-${process.pid}`
const traced = process.env.TRACEPARENT ? { traceparent: process.env.TRACEPARENT } : {}

async function store(storage: string, token: bigint): Promise<string> {
  const r = await fetch(`${storage}/write?token=${token}&who=${process.pid}`, { method: "POST" })
  return r.text()
}

switch (mode) {
  case "race": {
    const [witness, seconds, ttl] = rest
    const until = performance.now() + Number(seconds) * 1000
    let wins = 0
    say("ready")
    while (performance.now() < until) {
      const lease = await contest.claim(subject, { owner, ttlMs: Number(ttl) })
      const start = stamp()
      await Bun.sleep(Math.random() * 15)
      lease.check() // still ours: a lease lost here would be a bug this test is after
      const end = stamp()
      appendFileSync(witness!, `${lease.token} ${start} ${end}\n`)
      await lease.release()
      wins++
    }
    say(`done ${wins}`)
    await contest.close()
    break
  }
  case "chaos": {
    const [witness, end, ttl] = rest
    const counts = { wins: 0, lost: 0, unavailable: 0 }
    say("ready")
    while (Date.now() < Number(end)) {
      try {
        const lease = await contest.claim(subject, { owner, ttlMs: Number(ttl) })
        const start = stamp()
        await Bun.sleep(Math.random() * 15)
        const stop = stamp()
        try {
          lease.check() // held at `stop` too: its deadline is later, and nobody takes over before a deadline
          appendFileSync(witness!, `${lease.token} ${start} ${stop}\n`)
          counts.wins++
          say(`held ${lease.token}`)
        } catch (e) {
          if (!(e instanceof LeaseLostError)) throw e
          counts.lost++
        }
        await lease.release().catch(() => {}) // lost meanwhile, or JetStream unavailable: it expires
      } catch (e) {
        if (!(e instanceof ContestUnavailableError)) {
          say(`error ${(e as Error).name} ${(e as Error).message}`)
          process.exit(1)
        }
        counts.unavailable++
        await Bun.sleep(100)
      }
    }
    say(`done ${counts.wins} ${counts.lost} ${counts.unavailable}`)
    await contest.close().catch(() => {})
    break
  }
  case "hold": {
    const [ttl, every, storage] = rest
    const lease = await contest.claim(subject, { owner, ttlMs: Number(ttl), ...traced })
    say(`claimed ${lease.token}`)
    say(`storage ${await store(storage!, lease.token)}`)
    for (;;) {
      await Bun.sleep(Number(every))
      try {
        await lease.renew(Number(ttl))
      } catch (e) {
        say(`lost ${(e as Error).name}`)
        say(`storage ${await store(storage!, lease.token)}`)
        break
      }
    }
    await contest.close()
    break
  }
  case "wait": {
    const [ttl, storage] = rest
    say("waiting")
    const lease = await contest.claim(subject, { owner, ttlMs: Number(ttl), ...traced })
    say(`claimed ${lease.token} ${lease.from} ${stamp()}`)
    say(`replaced ${lease.replacedTraceparent ?? "none"}`)
    say(`storage ${await store(storage!, lease.token)}`)
    for (;;) {
      await Bun.sleep(Number(ttl) / 4)
      await lease.renew(Number(ttl))
    }
  }
  default:
    say(`unknown mode ${mode}`)
    process.exit(2)
}
