// What a superviseWorkers pool does by itself as it runs: grow with its bus's load and shrink when idle (autoscale),
// and replace each worker past its request, age or memory limit (recycleWhenDue).
import { readFileSync } from "node:fs"
import type { SupervisedInstance, Supervisor } from "../../kit/index.ts"
import type { SlotBus } from "./bus.ts"
import { stoppedForGood } from "../ops/front-cover.ts"

export type Range = { min: number; max: number }
export type Limits = { maxRequests: number; maxRssBytes: number; maxAgeMs: number }

// How often an elastic pool looks at its load, and when it grows: a request waited this long for a slot, or this
// share of its slots is busy; it shrinks when under IDLE_SHARE for idleTimeoutMs.
const SCALE_TICK_MS = 100
const GROW_WAIT_MS = 5
const GROW_SHARE = 0.9
const IDLE_SHARE = 0.25
const RECYCLE_TICK_MS = 200

/**
 * Grows the pool while requests wait for a slot (or 90% of its slots are busy), doubling up to `max`, and shrinks
 * it after `idleMs` under 25% use, at most by half and never under what its load needs, down to `min`.
 */
export function autoscale(
  sup: Supervisor,
  bus: SlotBus,
  range: Range,
  idleMs: number,
  scale: { target: number; why: string },
) {
  let busySince = performance.now()
  let changing = false
  const timer = setInterval(() => {
    if (stoppedForGood(sup)) return clearInterval(timer)
    if (changing || sup.state !== "running") return
    const pids = new Set(sup.instances.map((i) => i.pid))
    const load = bus.pools.load(pids)
    const size = sup.instances.length
    const share = load.capacity > 0 ? load.inFlight / load.capacity : 0
    const now = performance.now()
    let target = size
    if ((load.waitedMs >= GROW_WAIT_MS || share >= GROW_SHARE) && size < range.max) {
      target = Math.min(range.max, Math.max(size + 1, size * 2))
      scale.why =
        load.waitedMs >= GROW_WAIT_MS
          ? `a request waited ${Math.round(load.waitedMs)} ms`
          : `${Math.round(share * 100)}% busy`
    }
    if (share >= IDLE_SHARE || load.queued > 0) busySince = now
    else if (now - busySince >= idleMs && size > range.min) {
      const perWorker = load.capacity / Math.max(1, load.workers)
      const needed = Math.ceil(load.inFlight / (perWorker * 0.5))
      target = Math.max(range.min, Math.ceil(size / 2), needed)
      scale.why = `under ${IDLE_SHARE * 100}% busy for ${idleMs} ms`
      busySince = now
    }
    if (target === size) return
    scale.target = target
    changing = true
    sup.resize(target).then(
      () => (changing = false),
      () => (changing = false),
    )
  }, SCALE_TICK_MS)
  timer.unref()
}

/**
 * Replaces a worker past one of its (jittered) limits, the most overdue first, one at a time. A worker that took
 * its maxRequests retires at once (the bus sends it a request only while no other worker serves) and its
 * replacement starts then, beside any other recycle: so it serves at most its limit, what it held, and what it takes
 * during its own successor's start while no other worker could.
 */
export function recycleWhenDue(sup: Supervisor, bus: SlotBus | null, limits: Limits) {
  const jitter = new Map<number, number>() // by pid: 0.9 … 1
  const factor = (pid: number) => {
    let f = jitter.get(pid)
    if (f === undefined) jitter.set(pid, (f = 1 - Math.random() * 0.1))
    return f
  }
  const recycling = new Set<SupervisedInstance>()
  const recycle = (inst: SupervisedInstance) => {
    recycling.add(inst)
    jitter.delete(inst.pid)
    return sup.recycle(inst.index).finally(() => recycling.delete(inst))
  }
  let busy = false
  const next = () => {
    if (busy || sup.state !== "running") return
    const served = bus ? new Map(bus.workers.map((w) => [w.pid, w.requests])) : new Map<number, number>()
    const now = performance.now()
    let worst: SupervisedInstance | null = null
    let most = 1 // due from 1: its limit reached
    for (const inst of sup.instances) {
      if (!inst.proc || inst.state !== "running" || recycling.has(inst)) continue
      const f = factor(inst.pid)
      const over = Math.max(
        (served.get(inst.pid) ?? 0) / (limits.maxRequests * f),
        (now - inst.startedAt) / (limits.maxAgeMs * f),
        limits.maxRssBytes < Infinity ? rssBytes(inst.pid) / (limits.maxRssBytes * f) : 0,
      )
      if (over >= most) [worst, most] = [inst, over]
    }
    if (!worst) return
    busy = true
    // the next one at once; after a failed one (its successor not ready), at the next look
    recycle(worst).then(
      () => {
        busy = false
        next()
      },
      () => (busy = false),
    )
  }
  // Each worker of the pool retires at its limit as it joins (a reload's successor once it takes its index), and
  // its successor starts then.
  const atLimit = (pid: number) => {
    const inst = sup.instances.find((i) => i.pid === pid)
    if (inst && !recycling.has(inst) && sup.state === "running") recycle(inst).catch(() => {}) // retried at a look
  }
  const retireAtLimit = (pid: number) => {
    if (bus && limits.maxRequests < Infinity && sup.instances.some((i) => i.pid === pid))
      bus.pools.retireAfter(pid, Math.ceil(limits.maxRequests * factor(pid)), () => atLimit(pid))
  }
  const offStart = sup.on("start", (inst) => retireAtLimit(inst.pid))
  const offJoin = bus?.onWorker((e) => (e.type === "join" ? retireAtLimit(e.worker.pid) : jitter.delete(e.worker.pid)))
  const timer = setInterval(() => {
    if (!stoppedForGood(sup)) return next()
    clearInterval(timer)
    offStart()
    offJoin?.()
  }, RECYCLE_TICK_MS)
  timer.unref()
}

function rssBytes(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
    return kb ? Number(kb) * 1024 : 0
  } catch {
    return 0 // gone, or no /proc here
  }
}
