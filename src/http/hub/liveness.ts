// Whether each worker process is still there: attach within a grace period, stay attached, answer pings.
import { BusClosedError } from "../../core/index.ts"
import type { ControlMessage, PingReply } from "../wire.ts"
import type { ResolvedOptions } from "./options.ts"
import { isAttached, transition, type Registry, type WorkerInstance } from "./registry.ts"

const LINK_CHECK_MS = 100
const CONNECT_GRACE_MS = 10_000
const PING = JSON.stringify({ op: "ping" } satisfies ControlMessage)

export class Liveness {
  private readonly timers: ReturnType<typeof setInterval>[] = []

  constructor(private readonly o: ResolvedOptions, private readonly registry: Registry) {}

  start() {
    this.timers.push(
      setInterval(() => this.refreshAll(), LINK_CHECK_MS),
      setInterval(() => void this.reap(), this.o.pingEveryMs),
    )
  }

  stop() {
    for (const t of this.timers) clearInterval(t)
  }

  /** A newly registered instance must attach over shared memory within CONNECT_GRACE_MS. */
  watch(inst: WorkerInstance) {
    inst.bus.waitForWorkers(1, CONNECT_GRACE_MS).then(
      () => this.attached(inst),
      () => this.registry.evict(inst, "never connected over shared memory"),
    )
  }

  /** The worker answered a request: it is there. */
  answered(inst: WorkerInstance) {
    inst.lastSeen = Date.now()
    inst.missedPings = 0
    transition(inst, "connected")
  }

  /** A request to `inst` failed because the worker went away (not because the hub closed its bus). */
  lost(inst: WorkerInstance, e: unknown) {
    if (!(e instanceof BusClosedError)) transition(inst, "connected") // it answered nothing, but it was there to lose
    this.refresh(inst)
  }

  // --- polling ----------------------------------------------------------------------------------------
  // SlotBus has no worker join/leave event yet, so the hub looks at `bus.workerCount`: every LINK_CHECK_MS
  // for every instance, and on demand (pick, /health, a failed request). This is the only place that polls.
  // When SlotBus gains `bus.onWorker(listener)` (join | leave), subscribe to it in `watch` (join →
  // `attached`, leave → evict "disconnected"), then drop the LINK_CHECK_MS timer, `refresh` and `refreshAll`.

  /** Looks at whether `inst`'s worker is attached right now, and acts on a change. */
  refresh(inst: WorkerInstance) {
    if (!isAttached(inst)) return
    const up = inst.bus.workerCount > 0
    if (up && inst.state === "joining") this.attached(inst)
    else if (!up && inst.state === "connected") this.registry.evict(inst, "disconnected")
  }

  refreshAll() {
    for (const inst of [...this.registry.instances.values()]) this.refresh(inst)
  }

  private attached(inst: WorkerInstance) {
    if (transition(inst, "connected")) inst.lastSeen = Date.now()
  }

  /** Pings every connected worker over shared memory; evicts those that stop answering. */
  private async reap() {
    const connected = [...this.registry.instances.values()].filter((i) => i.state === "connected")
    await Promise.all(connected.map(async (inst) => {
      try {
        const reply = JSON.parse(new TextDecoder().decode(await inst.bus.call(PING, { timeoutMs: this.o.pingEveryMs }))) as PingReply
        inst.lastSeen = Date.now()
        inst.missedPings = 0
        inst.pid = reply.pid
      } catch {
        if (++inst.missedPings >= this.o.maxMissedPings) this.registry.evict(inst, `missed ${inst.missedPings} pings`)
        else this.refresh(inst)
      }
    }))
  }
}
