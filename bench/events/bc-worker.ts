// A BroadcastChannel subscriber Worker for `slotbus bench events` (same process, another thread).
import { monoNs as now } from "../lib/clock.ts"
declare const self: Worker
let phase = { count: 0, first: 0, last: 0, lat: [] as number[] }
let sampling = true
const chan = new BroadcastChannel("slotbus-bench")
chan.onmessage = (m) => {
  const s = m.data as string
  if (s === "END") {
    const l = phase.lat.sort((a, b) => a - b)
    const q = (p: number) => l[Math.min(l.length - 1, Math.floor(p * l.length))]!
    self.postMessage({
      count: phase.count,
      accounted: phase.count,
      elapsedNs: phase.last - phase.first,
      lat: l.length ? [q(0.5), q(0.99)] : null,
    })
    phase = { count: 0, first: 0, last: 0, lat: [] }
    sampling = false
    return
  }
  const t = now()
  if (phase.count++ === 0) phase.first = t
  phase.last = t
  if (sampling) phase.lat.push(t - Number(s.slice(0, s.indexOf("|"))))
}
self.postMessage("ready")
