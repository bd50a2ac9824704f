// The worker's vitals report (docs/PROTOCOL.md §2, header line 8): one unref'd timer per process, never on a
// request's path, measures how late it ran and the heap, and writes them into every connection this process serves,
// for its fronts' GET /metrics. Cost: one timer, one process.memoryUsage() and a few word stores per second.
import type { Channel } from "../wire/channel.ts"
import { writeVitals } from "../wire/vitals-block.ts"

/** Reports come 1 to 1.25 s apart: at most once a second, at a varying phase, so a stall each second is seen. */
const PERIOD_MS = 1000
const JITTER_MS = 250

const channels = new Set<Channel>()
let timer: ReturnType<typeof setTimeout> | null = null
let due = 0

function schedule() {
  const delay = PERIOD_MS + Math.random() * JITTER_MS
  due = performance.now() + delay
  timer = setTimeout(report, delay)
  timer.unref()
}

function report() {
  const lagSeconds = Math.max(0, performance.now() - due) / 1000
  const mem = process.memoryUsage()
  const r = { lagSeconds, heapTotalBytes: mem.heapTotal, heapUsedBytes: mem.heapUsed, externalBytes: mem.external }
  for (const chan of channels) {
    if (chan.isOpen) writeVitals(chan, r)
    else channels.delete(chan)
  }
  timer = null
  if (channels.size > 0) schedule()
}

/** Report this process's vitals into `chan` from now on, until it closes. */
export function reportVitals(chan: Channel) {
  channels.add(chan)
  if (timer === null) schedule()
}
