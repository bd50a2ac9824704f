// A contest member for the lease tests, driven by its arguments; it reports on stdout, one line per event.
//   hold <name> <label> [ttlMs]      claim (waiting if needed), print "held <token>", then stay until killed; the
//                                    claim carries $TRACEPARENT if set
//   open <name>                      join, print "open <member>", stay until killed
//   wait <name> <label> <holdMs>     print "waiting", claim (waiting), print "got <token> <from>", hold, release, exit
//   race <name> <label> <wins> <counter-file> <racers>
//                                    win the subject <wins> times; each time check the shared counter file
//                                    (count, last token) was not touched meanwhile and the token grew; print
//                                    "done <overlaps> <wins> <takeovers-seen>"
//   scribble <name> <rounds> [seed words|chaos]
//                                    join, then write random bytes over the member and entry regions; with a
//                                    seed, a repeatable run: "chaos" random bytes, "words" plausible u32 words
//                                    (small states, member indexes, versions) at random aligned offsets
import { openSync, readSync, writeSync } from "node:fs"
import { toArrayBuffer } from "bun:ffi"
import { Contest } from "../../../src/leases/index.ts"

const [mode, name, ...rest] = process.argv.slice(2)
const KIND = 7
const say = (s: string) => process.stdout.write(`${s}\n`)
const forever = () => setInterval(() => {}, 1 << 30)

const contest = await Contest.open(name!)
switch (mode) {
  case "hold": {
    const lease = await contest.claim(
      { kind: KIND, label: rest[0]! },
      {
        owner: `holder-${process.pid}`,
        ttlMs: rest[1] ? Number(rest[1]) : undefined,
        ...(process.env.TRACEPARENT ? { traceparent: process.env.TRACEPARENT } : {}), // stored with the claim
      },
    )
    say(`held ${lease.token}`)
    forever()
    break
  }
  case "open":
    say(`open ${contest.member}`)
    forever()
    break
  case "wait": {
    say("waiting")
    const lease = await contest.claim({ kind: KIND, label: rest[0]! }, { owner: `waiter-${process.pid}` })
    say(`got ${lease.token} ${lease.from}`)
    await Bun.sleep(Number(rest[1]))
    lease.release()
    say("released")
    contest.close()
    break
  }
  case "race": {
    const subject = { kind: KIND, label: rest[0]! }
    const target = Number(rest[1])
    const fd = openSync(rest[2]!, "r+")
    const state = new BigUint64Array(2) // [count, last token]
    const bytes = new Uint8Array(state.buffer)
    let overlaps = 0
    let contended = 0
    // start together: wait until all racers have joined
    say("ready")
    for (let s = contest.stats(); s.members < Number(rest[3] ?? 1) && s.claims === 0; s = contest.stats())
      await Bun.sleep(2)
    for (let wins = 0; wins < target; wins++) {
      const r = contest.tryClaim(subject, { owner: `racer-${process.pid}` })
      let lease = r.claimed ? r.lease : undefined
      if (!lease) {
        contended++
        // every other time spin a little (in C) before sleeping in claim(): both ways of waiting get raced
        const spun = wins % 2 ? contest.tryClaim(subject, { owner: `racer-${process.pid}`, spinUs: 200 }) : undefined
        lease = spun?.claimed ? spun.lease : await contest.claim(subject, { owner: `racer-${process.pid}` })
      }
      readSync(fd, bytes, 0, 16, 0)
      const count = state[0]!
      if (lease.token <= state[1]!) overlaps++ // fencing: a later holder must carry a larger token
      state[0] = count + 1n
      state[1] = lease.token
      writeSync(fd, bytes, 0, 16, 0)
      // hold a while (busy, so a racer on the other core finds it taken; now and then across an event-loop turn)
      for (const until = performance.now() + 0.02; performance.now() < until; );
      if (wins % 8 === 0) await Bun.sleep(0)
      readSync(fd, bytes, 0, 16, 0)
      if (state[0] !== count + 1n || state[1] !== lease.token) overlaps++ // someone wrote while we held it
      lease.release()
      await Bun.sleep(0) // let the others in
    }
    say(`done ${overlaps} ${target} ${contended}`)
    contest.close()
    break
  }
  case "scribble": {
    const { address, size } = contest.table()
    const table = new Uint8Array(toArrayBuffer(address as never, 0, size))
    const rounds = Number(rest[0])
    if (rest[1] !== undefined) {
      let x = Number(rest[1]) * 2654435761 + 1
      const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x)
      const words = new DataView(table.buffer, table.byteOffset, size)
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < 2000; i++) {
          const off = 4096 + ((rnd() % ((size - 4096) >>> 2)) << 2)
          if (rest[2] === "words") words.setUint32(off, [0, 1, 2, 3, 7, 255, 0xffffffff, rnd()][rnd() % 8]!, true)
          else table[off + (rnd() & 3)] = rnd() & 255
        }
        await Bun.sleep(1)
      }
      say("scribbled")
      forever()
      break
    }
    for (let r = 0; r < rounds; r++) {
      // members (4096 …) and entries (20480 …), every byte at random; the header stays, so newcomers can join
      crypto.getRandomValues(table.subarray(4096, Math.min(size, 4096 + 65536)))
      for (let off = 20480; off + 65536 <= size; off += 65536) crypto.getRandomValues(table.subarray(off, off + 65536))
      await Bun.sleep(1)
    }
    say("scribbled")
    forever()
    break
  }
  default:
    throw new Error(`unknown mode ${mode}`)
}
