// A worker's vitals report in its connection's region (docs/PROTOCOL.md §2, header line 8): the worker writes its
// event-loop lag and heap about once a second under a seqlock of single 32-bit words; the hub reads them when
// scraped, without asking the worker. libslotbus never touches the line, and zero means "never reported".
import type { Channel } from "./channel.ts"

/** A report the hub reads while it is being written is read again, this many times in all, then left out. */
const READ_TRIES = 3
const MAX_U32 = 0xffff_ffff

/** A worker's vitals (event-loop lag, heap) as it last reported them. */
export interface WorkerVitals {
  lagSeconds: number
  heapTotalBytes: number
  heapUsedBytes: number
  externalBytes: number
}

const clamp = (n: number) => Math.min(MAX_U32, Math.max(0, Math.round(n)))

/** The worker side: one report into `chan`'s region (nothing once it is closed). */
export function writeVitals(chan: Channel, r: WorkerVitals) {
  if (!chan.isOpen) return
  const v = chan.vitalsLine
  const seq = Atomics.load(v, 0)
  Atomics.store(v, 0, (seq | 1) >>> 0) // odd: being written
  Atomics.store(v, 1, clamp(r.lagSeconds * 1e6))
  Atomics.store(v, 2, clamp(r.heapTotalBytes / 1024))
  Atomics.store(v, 3, clamp(r.heapUsedBytes / 1024))
  Atomics.store(v, 4, clamp(r.externalBytes / 1024))
  Atomics.store(v, 0, ((seq | 1) + 1) >>> 0 || 2) // even again, never 0 once written
}

/** The hub side: the worker's last report, or null when it never reported (or kept writing while read). */
export function readVitals(chan: Channel): WorkerVitals | null {
  if (!chan.isOpen) return null
  const v = chan.vitalsLine
  for (let i = 0; i < READ_TRIES; i++) {
    const seq = Atomics.load(v, 0)
    if (seq === 0) return null
    const lag = Atomics.load(v, 1)
    const total = Atomics.load(v, 2)
    const used = Atomics.load(v, 3)
    const external = Atomics.load(v, 4)
    if (seq % 2 === 0 && Atomics.load(v, 0) === seq)
      return {
        lagSeconds: lag / 1e6,
        heapTotalBytes: total * 1024,
        heapUsedBytes: used * 1024,
        externalBytes: external * 1024,
      }
  }
  return null
}
