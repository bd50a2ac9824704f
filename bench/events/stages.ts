// Per-event cost of each stage of a 64 B topic event, in one process (no wake-ups, no second CPU):
// publish from JS, the subscriber's C read (validate + filter + copy into its batch), and the JS that reads a
// batch (forEachSpan, with the callback the bench's peer uses, and the TopicEvent iterator).
//   bun bench/events/stages.ts
import { Topic } from "../../src/events/index.ts"
import { monoNs } from "../lib/clock.ts"

const SIZE = 64
const BATCH = 4096
const ROUNDS = 40
const data = new Uint8Array(SIZE)
const f64 = new Float64Array(data.buffer, 0, 1)
const now = Bun.nanoseconds

const topic = await Topic.open(`stages-${process.pid}`, { capacity: 1 << 24 })
const sub = topic.subscribe({ type: "bench" }, { queue: 1 << 16, idle: "park" })
const other = topic.subscribe({ type: "nomatch" }, { queue: 1 << 16, idle: "park" })

const stages: Record<string, number[]> = {}
const note = (name: string, ns: number) => (stages[name] ??= []).push(ns / BATCH)

// what peer.ts does per event in a throughput phase (Phase.add: a count, and a clock read every 256)
let count = 0
let last = 0
const add = (sent: number) => {
  if (count++ % 256 !== 0) return
  last = now() - sent
}

for (let r = 0; r < ROUNDS; r++) {
  let t = now()
  for (let i = 0; i < BATCH; i++) {
    f64[0] = i
    topic.publish({ type: "bench", data })
  }
  note("publish (JS encode + FFI + C claim/copy/commit)", now() - t)

  t = now()
  for (let i = 0; i < BATCH; i++) {
    f64[0] = monoNs()
    topic.publish({ type: "bench", data })
  }
  note("bench publisher: monoNs() + publish (what cli.ts sends)", now() - t)
  other.poll()
  sub.poll()

  // cli.ts measure(): `await d.send(i)` per event (send returns void), a setImmediate every 1024
  const send = (_i: number): void => {
    f64[0] = monoNs()
    topic.publish({ type: "bench", data })
  }
  t = now()
  for (let i = 0; i < BATCH; i++) {
    await send(i)
    if (i % 1024 === 1023) await new Promise<void>((r) => setImmediate(r))
  }
  note("bench loop: await d.send(i) + setImmediate/1024", now() - t)
  other.poll()
  sub.poll()

  t = now()
  for (let i = 0; i < BATCH; i++) f64[0] = monoNs()
  note("monoNs() alone (FFI clock_gettime + 2 BigInt reads)", now() - t)

  t = now()
  for (let i = 0; i < BATCH; i++) {
    f64[0] = i
    topic.publish({ type: "bench", data })
  }
  note("publish again (ring pages warm)", now() - t)

  t = now()
  const none = other.poll()
  note("sb_sub_poll, no event matches (C validate + filter)", now() - t)
  if (none.count !== 0) throw new Error("filter let a non-matching event through")

  t = now()
  const b = sub.poll()
  note("sb_sub_poll, all match (C validate + filter + copy)", now() - t)
  if (b.count !== BATCH) throw new Error(`polled ${b.count}, want ${BATCH}`)

  t = now()
  let s = 0
  b.forEachSpan((_id, at) => {
    s += at
  })
  note("forEachSpan, empty callback (JS)", now() - t)

  const d = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength)
  t = now()
  b.forEachSpan((_id, at) => add(d.getFloat64(at, true)))
  note("forEachSpan + peer.ts callback (JS)", now() - t)

  t = now()
  for (const ev of b) s += ev.data.length
  note("batch iterator, TopicEvent per event (JS)", now() - t)
  if (s === -1) console.log(last)
}

const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log(
  `events-stages · Bun ${Bun.version} · ${new Date().toISOString()} · ${ROUNDS} rounds of ${BATCH} events, 64 B`,
)
for (const [name, xs] of Object.entries(stages)) {
  const tail = xs.slice(ROUNDS / 4) // after warm-up
  console.log(
    `${name.padEnd(52)} median ${med(tail).toFixed(1).padStart(6)} ns/event   min ${Math.min(...tail)
      .toFixed(1)
      .padStart(6)}`,
  )
}
sub.close()
other.close()
topic.close()
