// A subscriber process for `slotbus bench events`. Prints {"ready":true}, then one JSON result per phase:
// {"count", "accounted", "elapsedNs", "lat": [p50, p99] | null}. Events carry their send time (process.hrtime,
// CLOCK_MONOTONIC, comparable across processes) in their first 8 bytes (slotbus) or as text (the others).
//   bun peer.ts topic <name> <spin|adaptive|park> <iter|batch>
//   bun peer.ts nats <port> | redis <port> | ipc
import { Topic } from "../../src/events/index.ts"
import { monoNs as now } from "../lib/clock.ts"

const [kind, where, idle, reader] = process.argv.slice(2)
const say = (o: object) => process.stdout.write(JSON.stringify(o) + "\n")

class Phase {
  count = 0
  first = 0
  last = 0
  lat: number[] = []
  constructor(readonly sample: boolean) {}
  add(sentNs: number) {
    // throughput phases read the clock once per 256 events (it is an FFI call), and at the end
    if (!this.sample && this.count++ % 256 !== 0) return
    if (this.sample) this.count++
    const t = now()
    if (this.first === 0) this.first = t
    this.last = t
    if (this.sample) this.lat.push(t - sentNs)
  }
  report(accounted = this.count) {
    if (this.count > 0) this.last = now()
    const l = this.lat.sort((a, b) => a - b)
    const q = (p: number) => l[Math.min(l.length - 1, Math.floor(p * l.length))]!
    say({ count: this.count, accounted, elapsedNs: this.last - this.first, lat: l.length ? [q(0.5), q(0.99)] : null })
  }
}

const phases = [new Phase(true), new Phase(false)] // latency, then throughput
let phase = 0
const ended = () => {
  phases[phase]!.report()
  phase++
  if (phase === phases.length) setTimeout(() => process.exit(0), 50)
}
const parseText = (s: string) => Number(s.slice(0, s.indexOf("|")))

if (kind === "topic") {
  const topic = await Topic.open(where!, { capacity: 1 << 24 })
  const ctlTopic = await Topic.open(`${where}-ctl`, { capacity: 1 << 16 })
  const sub = topic.subscribe({ type: "bench" }, { queue: 1 << 16, idle: idle as "spin" })
  const ctl = ctlTopic.subscribe({ type: "end" }, { idle: "park" })
  say({ ready: true })
  const f64 = new Float64Array(1)
  const b8 = new Uint8Array(f64.buffer)
  const sentOf = (d: Uint8Array) => (b8.set(d.subarray(0, 8)), f64[0]!)
  let base = { received: 0, lagged: 0 }
  const finish = () => {
    const r = sub.received,
      l = sub.lagged
    phases[phase]!.report(r - base.received + (l - base.lagged))
    base = { received: r, lagged: l }
    phase++
    if (phase === phases.length) setTimeout(() => process.exit(0), 50)
  }
  const endSeen = () => ctl.poll().count > 0
  if (reader === "batch") {
    let dv: DataView | undefined
    const take = (b: ReturnType<typeof sub.poll>) => {
      dv ??= new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength)
      const d = dv
      const ph = phases[phase]!
      b.forEachSpan((_id, at) => ph.add(d.getFloat64(at, true)))
    }
    for (;;) {
      const b = sub.poll()
      if (b.count > 0) take(b)
      else if (endSeen()) {
        // drain what came before the end marker
        for (let n = sub.poll(); n.count > 0; n = sub.poll()) take(n)
        finish()
        if (phase === phases.length) break
      } else await sub.ready(1)
    }
  } else {
    for (;;) {
      const ev = await sub.receive(2)
      if (ev) phases[phase]!.add(sentOf(ev.data))
      else if (endSeen()) {
        for (let e = await sub.receive(0); e; e = await sub.receive(0)) phases[phase]!.add(sentOf(e.data))
        finish()
        if (phase === phases.length) break
      }
    }
  }
} else if (kind === "nats") {
  const { connect } = await import("@nats-io/transport-node")
  const nc = await connect({ servers: `127.0.0.1:${where}` })
  const dec = new TextDecoder()
  nc.subscribe("bench", {
    callback: (_e, m) => {
      const s = dec.decode(m.data)
      if (s === "END") ended()
      else phases[phase]!.add(parseText(s))
    },
  })
  await nc.flush()
  say({ ready: true })
} else if (kind === "redis") {
  const { RedisClient } = await import("bun")
  const client = new RedisClient(`redis://127.0.0.1:${where}`)
  await client.subscribe("bench", (message: string) => {
    if (message === "END") ended()
    else phases[phase]!.add(parseText(message))
  })
  say({ ready: true })
} else if (kind === "ipc") {
  process.on("message", (m: unknown) => {
    const s = m as string
    if (s === "END") ended()
    else phases[phase]!.add(parseText(s))
  })
  say({ ready: true })
} else {
  process.stderr.write(`peer: unknown kind ${kind}\n`)
  process.exit(2)
}
