// Whether each worker process is still there: attach within a grace period, stay attached, answer pings.
import { BusClosedError } from "../../core/index.ts"
import type { ControlMessage, PingReply } from "../wire.ts"
import type { ResolvedOptions } from "./options.ts"
import { isAttached, transition, type Registry, type WorkerInstance } from "./registry.ts"

const CONNECT_GRACE_MS = 10_000
const PING = JSON.stringify({ op: "ping" } satisfies ControlMessage)
const decoder = new TextDecoder()

export class Liveness {
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly registry: Registry,
  ) {}

  /** Attach and detach are events of each bus (`watch`); only a hung process needs the pings. */
  start() {
    this.timer ??= setInterval(() => void this.reap(), this.opts.pingEveryMs)
  }

  stop() {
    clearInterval(this.timer)
  }

  /** A newly registered instance must attach over shared memory within CONNECT_GRACE_MS and stay attached. */
  watch(inst: WorkerInstance) {
    const grace = setTimeout(() => {
      if (inst.state === "joining") this.registry.evict(inst, "never connected over shared memory")
    }, CONNECT_GRACE_MS)
    grace.unref()
    // After the instance ends (evicted, drained, hub closing) its bus is closed: late events find it not attached.
    inst.bus.onWorker((e) => {
      if (e.type === "join") {
        clearTimeout(grace)
        if (transition(inst, "connected")) inst.lastSeen = Date.now()
      } else if (inst.bus.workerCount === 0 && isAttached(inst)) {
        this.registry.evict(inst, "disconnected")
      }
    })
  }

  /** The worker answered a request: it is there. */
  answered(inst: WorkerInstance) {
    inst.lastSeen = Date.now()
    inst.missedPings = 0
    transition(inst, "connected")
  }

  /** A request to `inst` failed because the worker went away: its bus's leave event has evicted it already. */
  lost(inst: WorkerInstance, e: unknown) {
    if (!(e instanceof BusClosedError) && inst.bus.workerCount === 0 && isAttached(inst))
      this.registry.evict(inst, "disconnected")
  }

  /** Pings every connected worker over shared memory; evicts those that stop answering (a hung process). */
  private async reap() {
    const connected = [...this.registry.instances.values()].filter((i) => i.state === "connected")
    await Promise.all(
      connected.map(async (inst) => {
        try {
          const reply = JSON.parse(
            decoder.decode(await inst.bus.call(PING, { timeoutMs: this.opts.pingEveryMs })),
          ) as PingReply
          inst.lastSeen = Date.now()
          inst.missedPings = 0
          inst.pid = reply.pid
        } catch {
          if (++inst.missedPings >= this.opts.maxMissedPings)
            this.registry.evict(inst, `missed ${inst.missedPings} pings`)
        }
      }),
    )
  }
}
