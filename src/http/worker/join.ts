// Joining a hub and staying joined: register over HTTP, attach over slotbus, rejoin whenever the hub goes away.
import { SlotWorker, type IdleStrategy, type SlotHandler } from "../../core/index.ts"
import { Backoff, checkNumber, longTimeout, withCauses } from "../../kit/index.ts"
import { HubAuthError, HubRequestError, RouteConflictError } from "../errors.ts"
import type { RegisterReply, RegisterRequest, RouteDecl } from "../wire.ts"
import type { HubClient } from "./client.ts"
import type { Nats } from "../../nats/index.ts"

export interface HubAppClosed {
  /** "closed": close() ran; "replaced": a newer registration of this instance took over; "failed": run() failed. */
  reason: "closed" | "replaced" | "failed"
  /** Why run() failed (the error it rejected with). */
  error?: Error
}

/**
 * The app's life: `idle` while routes are declared, `joining` while it registers and attaches (also after
 * losing a hub), `connected` while it serves, `closing` once `close()` began, `closed` at the end (closed,
 * replaced, or run() failed). Only JoinLoop writes it.
 */
export type AppState = "idle" | "joining" | "connected" | "closing" | "closed"

export interface JoinConfig {
  name: string
  instance: string
  idle?: IdleStrategy
  /** Serve over NATS (a worker on another host than the hub's). */
  nats?: Nats
  /** Over NATS: the host name the hub shows. */
  host?: string
  exitOnUncaught?: boolean
  maxBackoffMs?: number
  log: (message: string, error?: unknown) => void
  routes: () => RouteDecl[]
  serve: SlotHandler
  /** Registered and attached: the hub's settings for this worker. */
  joined: (reply: RegisterReply) => void
  /** The hub went away or the app stops: drop what only that hub could finish. */
  left: (reason: string) => void
}

const MIN_BACKOFF_MS = 100

export class JoinLoop {
  private current: AppState = "idle"
  private worker: SlotWorker | null = null
  /** The bus of the last hub, so a new registration can learn it was replaced meanwhile. */
  private bus: string | undefined
  private running: Promise<void> | null = null
  private stopping: Promise<void> | null = null
  private wake: (() => void) | null = null
  private readonly done = Promise.withResolvers<HubAppClosed>()
  readonly closed: Promise<HubAppClosed> = this.done.promise

  private readonly backoff: Backoff

  constructor(
    private readonly client: HubClient,
    private readonly c: JoinConfig,
  ) {
    const maxMs = checkNumber(c.maxBackoffMs, {
      what: "maxBackoffMs",
      where: "hubWorker",
      max: Infinity,
      integer: false,
      dflt: 5000,
    })
    this.backoff = new Backoff({ initialMs: Math.min(MIN_BACKOFF_MS, maxMs), maxMs, jitter: 0.5 })
  }

  get state(): AppState {
    return this.current
  }

  /** Read after every await: close() may have begun meanwhile. */
  private get closing(): boolean {
    return this.current === "closing"
  }

  get connected(): boolean {
    return this.worker?.connected ?? false
  }

  run(): Promise<void> {
    if (this.current === "idle") {
      this.current = "joining"
      this.running = new Promise<void>((resolve, reject) => void this.loop(resolve, reject))
    }
    return this.running!
  }

  private async loop(joined: () => void, failed: (e: Error) => void) {
    const origin = this.client.hub.origin
    let everJoined = false
    let lastProblem = ""
    while (!this.closing) {
      let problem: Error
      try {
        const reg = await this.register()
        if (this.c.nats !== undefined && !reg.nats)
          throw new HubRequestError(
            `the hub at ${origin} takes no workers over NATS: start it with the same nats option (createHub({ nats }) or slotbus hub --nats)`,
            400,
          )
        const worker = await SlotWorker.connect(
          reg.bus,
          this.c.serve,
          this.c.nats === undefined
            ? { idle: this.c.idle, waitForHubMs: 5000, exitOnUncaught: this.c.exitOnUncaught }
            : {
                remote: this.c.nats,
                closeWhenHubsGone: true,
                host: this.c.host,
                exitOnUncaught: this.c.exitOnUncaught,
              },
        )
        this.bus = reg.bus
        this.worker = worker
        this.c.joined(reg)
        if (this.closing) await worker.close()
        else this.current = "connected"
        if (!everJoined) joined()
        else this.c.log(`rejoined the hub at ${origin} as "${this.c.name}"`)
        everJoined = true
        this.backoff.reset()
        lastProblem = ""
        const closed = await worker.closed
        this.worker = null
        this.c.left("hub-gone")
        if (this.closing) break
        this.current = "joining"
        this.c.log(`lost the hub at ${origin} (${closed.reason}); rejoining`)
        continue
      } catch (e) {
        problem = e as Error
      }
      if (problem instanceof HubRequestError && problem.status === 409) {
        this.c.log(problem.message)
        return this.finish({ reason: "replaced" }) // another replica took this instance's place
      }
      // Before the first join, fail fast on what waiting cannot fix; afterwards keep trying (and say so once).
      const permanent =
        problem instanceof RouteConflictError ||
        problem instanceof HubAuthError ||
        (problem instanceof HubRequestError && problem.status < 500)
      if (permanent && !everJoined && this.current === "joining") {
        this.finish({ reason: "failed", error: problem })
        return failed(problem)
      }
      // with its causes: Node's fetch says "fetch failed", why ("bad port", "connect ECONNREFUSED …") in its cause
      const why = withCauses(problem)
      if (why !== lastProblem) this.c.log(`cannot join the hub at ${origin}: ${why}; retrying`)
      lastProblem = why
      await this.sleep(this.backoff.next())
    }
    if (!everJoined) joined() // closed before it ever joined: run() settles too; `closed` says why
    this.finish({ reason: "closed" })
  }

  private async register(): Promise<RegisterReply> {
    await this.client.refreshToken()
    const body: RegisterRequest = {
      name: this.c.name,
      instance: this.c.instance,
      pid: process.pid,
      routes: this.c.routes(),
      previousBus: this.bus,
    }
    const res = await this.client.call("register", body)
    return (await res.json()) as RegisterReply
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = longTimeout(() => ((this.wake = null), resolve()), ms)
      this.wake = () => (t.clear(), (this.wake = null), resolve())
    })
  }

  private finish(c: HubAppClosed) {
    this.current = "closed"
    this.done.resolve(c)
  }

  /** Deregisters (so no new requests come), lets running handlers finish for up to `timeoutMs`, disconnects. */
  close(timeoutMs: number): Promise<void> {
    this.stopping ??= (async () => {
      const wasRunning = this.current === "joining" || this.current === "connected"
      if (this.current !== "closed") this.current = "closing"
      this.wake?.()
      if (this.worker?.connected)
        await this.client.call("deregister", { name: this.c.name, instance: this.c.instance }).catch(() => {})
      await this.worker?.close({ timeoutMs })
      this.c.left("closed")
      if (!wasRunning) this.finish({ reason: "closed" })
      await this.closed
    })()
    return this.stopping
  }
}
