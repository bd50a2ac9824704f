// `slotbus bench events soak`: publisher and subscriber processes on one small topic, SIGKILLed and SIGSTOPped
// at random, every event checked. Each event carries its publisher's id and sequence number and bytes made
// from both, so a subscriber sees a foreign byte, a duplicate, an event out of order, and every gap, which its
// `lagged` must account for. This process is the witness: it creates the topic, keeps a subscriber of its own
// that is never stopped, and reads the topic's shared counters. Run as `soak.ts pub <topic> <id>` or
// `soak.ts sub <topic>`, it is a publisher or a subscriber.
import { Topic, type Subscription } from "../../src/events/index.ts"
import { killAll, spawn, type Child } from "../lib/child.ts"

const USAGE = `usage: slotbus bench events soak [--seconds n] [--publishers k] [--subscribers k] [--capacity bytes] [--chaos-every ms] [--json]

Publisher and subscriber processes on one topic (a small ring, so it laps many times a second). Every event
is checked: its bytes, its publisher's order, and every gap against the subscriber's lagged count. Publishers
and subscribers are SIGKILLed and SIGSTOPped at random; this process keeps its own subscriber (never stopped).

  --seconds <n>       how long the chaos lasts (default 60)
  --publishers <k>    publisher processes (default 3)
  --subscribers <k>   subscriber processes (default 2)
  --capacity <bytes>  ring bytes, a power of two (default 262144)
  --chaos-every <ms>  mean time between two chaos actions (default 300; 0: none)
  --json              the summary as one JSON object

Exits 1 if any event was corrupt, foreign, duplicated or out of order, any loss was uncounted, a process
crashed (ended without being killed here), or nothing was received.`

const TYPE = "soak"
const REPORT_MS = 200

// ── events: [publisher id u32][seq u32][bytes i: (id * 31 + seq * 7 + i) & 255] ─────────────────────────

function fill(buf: Uint8Array, id: number, seq: number, size: number): Uint8Array {
  const v = new DataView(buf.buffer, buf.byteOffset, 8)
  v.setUint32(0, id, true)
  v.setUint32(4, seq, true)
  const b = (id * 31 + seq * 7) & 255
  for (let i = 8; i < size; i++) buf[i] = (b + i) & 255
  return buf.subarray(0, size)
}

/** A foreign event as its reader saw it: its topic id, length, the publisher and sequence its first bytes name,
 * and the first byte that is not theirs (-1: shorter than 8 bytes). What a failed soak needs to be read. */
interface ForeignSample {
  event: number
  bytes: number
  publisher: number
  seq: number
  at: number
  got: number
  want: number
}

/** Per-publisher books of one reader: what it saw, and what that says about gaps and disorder. */
class Books {
  received = 0
  foreign = 0
  disorder = 0
  /** The first few foreign events. */
  readonly foreignSamples: ForeignSample[] = []
  private readonly seen = new Map<number, { first: number; last: number; count: number }>()

  take(data: Uint8Array, event = -1) {
    this.received++
    if (data.length < 8)
      return this.alien({ event, bytes: data.length, publisher: -1, seq: -1, at: -1, got: 0, want: 0 })
    const v = new DataView(data.buffer, data.byteOffset, 8)
    const id = v.getUint32(0, true),
      seq = v.getUint32(4, true)
    const b = (id * 31 + seq * 7) & 255
    for (let i = 8; i < data.length; i++)
      if (data[i] !== ((b + i) & 255))
        return this.alien({ event, bytes: data.length, publisher: id, seq, at: i, got: data[i]!, want: (b + i) & 255 })
    const s = this.seen.get(id)
    if (!s) return void this.seen.set(id, { first: seq, last: seq, count: 1 })
    if (seq <= s.last) return void this.disorder++
    s.last = seq
    s.count++
  }

  private alien(sample: ForeignSample) {
    this.foreign++
    if (this.foreignSamples.length < 3) this.foreignSamples.push(sample)
  }

  /** Events between the first and last seen of each publisher that never arrived; with `from0`, also those
   * before the first (the reader was there before the publisher started) and those a publisher reported
   * published after the last seen. */
  gaps(from0: boolean, published?: Map<number, number>): number {
    let g = 0
    for (const [id, s] of this.seen) {
      g += s.last - (from0 ? 0 : s.first) + 1 - s.count
      const p = published?.get(id)
      if (p !== undefined && p > s.last + 1) g += p - s.last - 1
    }
    if (published) for (const [id, p] of published) if (!this.seen.has(id)) g += p
    return g
  }
}

/** Reads sub until stopped, checking every event; returns when stop() resolves and the topic is drained. */
async function read(sub: Subscription, books: Books, stopping: () => boolean): Promise<void> {
  let turn = performance.now()
  for (;;) {
    const batch = sub.poll()
    if (batch.count > 0) {
      batch.forEachRaw((id, _type, data) => books.take(data, id))
      // poll() is the caller's loop: let timers (the topic's tick answers newcomers, reports) in every ms
      if (performance.now() - turn > 1) await Bun.sleep(0), (turn = performance.now())
      continue
    }
    if (stopping()) return
    await sub.ready(50)
  }
}

// ── the publisher and subscriber processes ─────────────────────────────────────────────────────────────

async function publisher(name: string, id: number): Promise<void> {
  const topic = await Topic.open(name)
  const buf = new Uint8Array(16 * 1024)
  let seq = 0
  let ending = false
  const report = (final = false) => console.log(JSON.stringify({ published: seq, ...(final ? { final } : {}) }))
  process.on("SIGTERM", () => (ending = true))
  let last = performance.now()
  while (!ending) {
    // sizes from 8 B to 12 KiB, most small: records of many lengths wrap the ring at every offset
    for (let i = 0; i < 64; i++) {
      const size = 8 + Math.floor(Math.exp(Math.random() * Math.log(12 * 1024)))
      topic.publish({ type: TYPE, data: fill(buf, id, seq, size) })
      seq++
    }
    if (performance.now() - last > REPORT_MS) report(), (last = performance.now())
    await Bun.sleep(Math.random() < 0.05 ? 5 : 0) // now and then a pause, so readers catch up
  }
  report(true)
  await topic.close()
  process.exit(0)
}

async function subscriber(name: string): Promise<void> {
  const topic = await Topic.open(name)
  const sub = topic.subscribe({ type: TYPE }, { queue: 4096 })
  const books = new Books()
  let ending = false
  const report = (final = false) =>
    console.log(
      JSON.stringify({
        received: books.received,
        lagged: sub.lagged,
        corrupt: sub.corrupt,
        estimates: sub.estimates,
        foreign: books.foreign,
        disorder: books.disorder,
        uncounted: Math.max(0, books.gaps(false) - sub.lagged),
        foreignSamples: books.foreignSamples,
        ...(final ? { final } : {}),
      }),
    )
  const timer = setInterval(report, REPORT_MS)
  process.on("SIGTERM", () => (ending = true))
  await read(sub, books, () => ending)
  clearInterval(timer)
  report(true)
  sub.close()
  await topic.close()
  process.exit(0)
}

// ── the witness ───────────────────────────────────────────────────────────────────────────────────────

interface Options {
  seconds: number
  publishers: number
  subscribers: number
  capacity: number
  chaosEveryMs: number
  json: boolean
}

function parse(argv: string[]): Options | string {
  const o: Options = { seconds: 60, publishers: 3, subscribers: 2, capacity: 1 << 18, chaosEveryMs: 300, json: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--json") o.json = true
    else if (a === "-h" || a === "--help") return USAGE
    else if (["--seconds", "--publishers", "--subscribers", "--capacity", "--chaos-every"].includes(a)) {
      const v = Number(argv[++i])
      const [min, max] =
        a === "--seconds"
          ? [1, 86_400]
          : a === "--chaos-every"
            ? [0, 600_000]
            : a === "--capacity"
              ? [1 << 16, 1 << 30]
              : [1, 16]
      if (!Number.isInteger(v) || v < min || v > max || (a === "--capacity" && (v & (v - 1)) !== 0))
        return `${a} takes a whole number from ${min} to ${max}${a === "--capacity" ? ", a power of two" : ""}`
      if (a === "--seconds") o.seconds = v
      else if (a === "--publishers") o.publishers = v
      else if (a === "--subscribers") o.subscribers = v
      else if (a === "--capacity") o.capacity = v
      else o.chaosEveryMs = v
    } else return `unknown option ${a}`
  }
  return o
}

interface SubReport {
  received: number
  lagged: number
  corrupt: number
  estimates: number
  foreign: number
  disorder: number
  uncounted: number
  foreignSamples?: ForeignSample[]
  final?: boolean
}

const lastReport = <T>(c: Child): T | null => {
  for (let i = c.lines.length - 1; i >= 0; i--)
    try {
      return JSON.parse(c.lines[i]!) as T
    } catch {}
  return null
}
const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)]

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "pub") return publisher(argv[1]!, Number(argv[2])).then(() => 0)
  if (argv[0] === "sub") return subscriber(argv[1]!).then(() => 0)
  const o = parse(argv)
  if (typeof o === "string") {
    ;(o === USAGE ? console.log : console.error)(o === USAGE ? USAGE : `slotbus bench events soak: ${o}\n\n${USAGE}`)
    return o === USAGE ? 0 : 2
  }
  const name = `soak-${process.pid}-${Date.now().toString(36)}`
  const topic = await Topic.open(name, { capacity: o.capacity })
  const mine = topic.subscribe({ type: TYPE }, { queue: 1 << 16 })
  const books = new Books()
  let ending = false
  const reading = read(mine, books, () => ending)
  const pubs = new Map<Child, number>() // process → publisher id
  const published = new Map<number, number>() // publisher id → events it reported published
  const subs: Child[] = []
  const subReports: SubReport[] = []
  const chaos = { publisherKills: 0, publisherStops: 0, subscriberKills: 0, subscriberStops: 0 }
  // A process that ended without being killed here crashed: counted, its output kept, and it is replaced.
  const crashes: string[] = []
  const replaceCrashed = () => {
    for (const c of [...pubs.keys()].filter((c) => !c.running)) {
      crashes.push(`publisher ${c.pid}: ${c.output.slice(-1500)}`)
      notePublished(c)
      pubs.delete(c)
      startPub()
    }
    for (const c of subs.filter((c) => !c.running)) {
      crashes.push(`subscriber ${c.pid}: ${c.output.slice(-1500)}`)
      subs.splice(subs.indexOf(c), 1)
      startSub()
    }
  }
  const stopped = new Set<number>()
  let nextId = 1
  const startPub = () => pubs.set(spawn([process.execPath, import.meta.path, "pub", name, String(nextId)]), nextId++)
  const startSub = () => subs.push(spawn([process.execPath, import.meta.path, "sub", name]))
  const notePublished = (c: Child) => {
    const r = lastReport<{ published: number }>(c)
    const id = pubs.get(c)!
    if (r) published.set(id, Math.max(published.get(id) ?? 0, r.published))
  }
  try {
    for (let i = 0; i < o.publishers; i++) startPub()
    for (let i = 0; i < o.subscribers; i++) startSub()
    const end = performance.now() + o.seconds * 1000
    let lastLine = performance.now()
    while (performance.now() < end) {
      await Bun.sleep(o.chaosEveryMs > 0 ? -Math.log(1 - Math.random()) * o.chaosEveryMs : 1000)
      replaceCrashed()
      if (o.chaosEveryMs > 0) {
        const action = Math.floor(Math.random() * 4)
        const pool = action < 2 ? [...pubs.keys()] : subs
        const c = pick(pool.filter((c) => c.running && !stopped.has(c.pid)))
        if (c && action % 2 === 0) {
          c.signal("SIGKILL")
          await c.exited
          if (action === 0) {
            chaos.publisherKills++
            notePublished(c) // a lower bound: it may have published more since its last report
            pubs.delete(c)
            startPub()
          } else {
            chaos.subscriberKills++
            subs.splice(subs.indexOf(c), 1)
            startSub()
          }
        } else if (c) {
          c.signal("SIGSTOP")
          action === 1 ? chaos.publisherStops++ : chaos.subscriberStops++
          stopped.add(c.pid)
          setTimeout(() => (stopped.delete(c.pid), c.signal("SIGCONT")), 50 + Math.random() * 1950)
        }
      }
      if (!o.json && performance.now() - lastLine > 10_000) {
        lastLine = performance.now()
        console.log(
          `${Math.round((end - performance.now()) / 1000)} s left: witness received ${books.received}, lagged ${mine.lagged}, corrupt ${mine.corrupt}, ${JSON.stringify(chaos)}`,
        )
      }
    }
    await Bun.sleep(2100) // every SIGSTOP has been undone by now
    replaceCrashed()
    for (const c of pubs.keys()) c.signal("SIGTERM")
    await Promise.all([...pubs.keys()].map((c) => c.exited))
    for (const c of pubs.keys()) {
      if (!lastReport<{ final?: boolean }>(c)?.final)
        throw new Error(`a publisher ended without its final report:\n${c.output}`)
      notePublished(c)
    }
    await Bun.sleep(500) // the subscribers catch up with the last events
    for (const c of subs) c.signal("SIGTERM")
    await Promise.all(subs.map((c) => c.exited))
    for (const c of subs) {
      const r = lastReport<SubReport>(c)
      if (!r?.final) throw new Error(`a subscriber ended without its final report:\n${c.output}`)
      subReports.push(r)
    }
    ending = true
    await reading
    const stats = topic.stats()
    const sum = (k: keyof SubReport) => subReports.reduce((n, r) => n + Number(r[k]), 0)
    const summary = {
      seconds: o.seconds,
      publishers: o.publishers,
      subscribers: o.subscribers,
      capacity: o.capacity,
      chaos,
      published: [...published.values()].reduce((a, b) => a + b, 0),
      witness: {
        received: books.received,
        lagged: mine.lagged,
        corrupt: mine.corrupt,
        estimates: mine.estimates,
        foreign: books.foreign,
        disorder: books.disorder,
        uncounted: Math.max(0, books.gaps(true, published) - mine.lagged),
      },
      subscriberProcesses: {
        received: sum("received"),
        lagged: sum("lagged"),
        corrupt: sum("corrupt"),
        estimates: sum("estimates"),
        foreign: sum("foreign"),
        disorder: sum("disorder"),
        uncounted: sum("uncounted"),
      },
      topic: { abandoned: stats.abandoned, fenced: stats.fenced, laps: Math.floor(stats.tail / o.capacity) },
      foreignSamples: [...books.foreignSamples, ...subReports.flatMap((r) => r.foreignSamples ?? [])].slice(0, 6),
      crashes: crashes.length,
      crashOutput: crashes.slice(0, 3),
    }
    if (o.json) console.log(JSON.stringify(summary))
    else {
      const w = summary.witness,
        s = summary.subscriberProcesses
      console.log(
        `slotbus bench events soak: ${o.seconds} s, ${o.publishers} publishers, ${o.subscribers} subscribers, ${o.capacity} B ring (${summary.topic.laps} laps)`,
      )
      console.log(
        `chaos: ${chaos.publisherKills} publisher SIGKILLs, ${chaos.publisherStops} publisher SIGSTOPs, ${chaos.subscriberKills} subscriber SIGKILLs, ${chaos.subscriberStops} subscriber SIGSTOPs`,
      )
      console.log(
        `published: ${summary.published} events (at least: a killed publisher's last ones after its last report are not known here); ${summary.topic.abandoned} records abandoned mid-write`,
      )
      console.log(
        `witness: ${w.received} received, ${w.lagged} lagged (${w.estimates} estimated), ${w.corrupt} corrupt, ${w.foreign} foreign, ${w.disorder} out of order, ${w.uncounted} lost uncounted`,
      )
      console.log(
        `subscriber processes (their final reports): ${s.received} received, ${s.lagged} lagged (${s.estimates} estimated), ${s.corrupt} corrupt, ${s.foreign} foreign, ${s.disorder} out of order, ${s.uncounted} lost uncounted`,
      )
      console.log(
        `topic: ${summary.topic.fenced} paddings around stopped publishers; processes crashed: ${summary.crashes}`,
      )
      for (const c of summary.crashOutput) console.log(`crash: ${c}`)
      for (const f of summary.foreignSamples) console.log(`foreign event: ${JSON.stringify(f)}`)
    }
    return failed(summary) ? 1 : 0
  } finally {
    ending = true
    killAll()
    mine.close()
    await topic.close()
  }
}

type Counts = { received: number; corrupt: number; foreign: number; disorder: number; uncounted: number }
function failed(s: { witness: Counts; subscriberProcesses: Counts; crashes: number }): boolean {
  const bad = (c: Counts) => c.corrupt > 0 || c.foreign > 0 || c.disorder > 0 || c.uncounted > 0
  return bad(s.witness) || bad(s.subscriberProcesses) || s.witness.received === 0 || s.crashes > 0
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)))
