// The worker side: SlotWorker connects to a hub by name and answers its requests from the slots. A facade over its
// roles: its connections (connections.ts), the intake of their requests (intake.ts), serving each (serve.ts) and
// its lifetime (lifetime.ts).
import { type Chan, loadNative } from "../../native/ffi.ts"
import { checkNumber, checkOptions, checkRemote, madeBy } from "../../kit/index.ts"
import { busName } from "../wire/codec.ts"
import { idler } from "../wire/idle-strategy.ts"
import { type RemoteTransport, WORKER_PORT } from "../wire/remote.ts"
import type { FrontMember, FrontRoot } from "../ops/fronts.ts"
import { rpcHandler } from "../rpc/rpc.ts"
import {
  closeTimeoutMs,
  CONNECT_OPTIONS,
  type ConnectOptions,
  EXPOSE_OPTIONS,
  type ExposeOptions,
  type FetchHandler,
  type SlotHandler,
  type WorkerClosed,
} from "./options.ts"
import { SlotRequest } from "./request.ts"
import type { SlotReply } from "./answer.ts"
import { Serving } from "./serve.ts"
import { exitOnUncaught } from "./uncaught.ts"
import { Connections } from "./connections.ts"
import { Lifetime } from "./lifetime.ts"

export { SlotRequest }
export type { SlotReply }
export type { ConnectOptions, ExposeOptions, FetchHandler, SlotHandler, WorkerClosed }

const FACTORY = Symbol("SlotWorker.connect")

export class SlotWorker implements FrontRoot {
  readonly closed: Promise<WorkerClosed>
  private readonly serving: Serving
  private readonly lifetime: Lifetime
  private readonly conns: Connections

  private constructor(
    key: symbol,
    readonly name: string,
    private readonly handler: SlotHandler,
    private readonly opts: ConnectOptions,
    root: SlotWorker | null = null,
  ) {
    madeBy(key, FACTORY, "SlotWorker", "await SlotWorker.connect(name, handler, options)")
    this.serving = new Serving(handler)
    this.lifetime = new Lifetime(name, opts, root !== null, this)
    this.conns = new Connections(this, name, opts, this.serving, this.lifetime, root?.conns ?? null)
    this.closed = this.lifetime.closed
  }

  /** Connect to the hub listening as `name` and serve its requests with `handler`. */
  static async connect(name: string, handler: FetchHandler, opts: ConnectOptions & { fetch: true }): Promise<SlotWorker>
  static async connect(
    name: string,
    handler: SlotHandler,
    opts?: ConnectOptions & { fetch?: false },
  ): Promise<SlotWorker>
  static async connect(
    name: string,
    handler: SlotHandler | FetchHandler,
    opts: ConnectOptions = {},
  ): Promise<SlotWorker> {
    if (typeof handler !== "function") throw new TypeError("handler must be a function (req) => reply")
    checkOptions(opts, CONNECT_OPTIONS, "SlotWorker.connect")
    for (const what of ["fetch", "exitWithFront", "exitOnUncaught"] as const)
      if (opts[what] !== undefined && typeof opts[what] !== "boolean")
        throw new TypeError(`SlotWorker.connect: ${what} must be a boolean, got ${typeof opts[what]}`)
    idler(opts.idle, "SlotWorker.connect idle")
    busName(name)
    exitOnUncaught(opts.exitOnUncaught ?? true)
    await loadNative()
    for (const what of ["waitForHubMs", "helloTimeoutMs"] as const)
      checkNumber(opts[what], { what, where: "SlotWorker.connect", max: Infinity, integer: false, dflt: 0 })
    checkNumber(opts.hubUid, { what: "hubUid", where: "SlotWorker.connect", max: 0xfffffffe, note: "a uid", dflt: 0 })
    const h = opts.fetch ? (req: SlotRequest) => (handler as FetchHandler)(req.toRequest()) : (handler as SlotHandler)
    const w = new SlotWorker(FACTORY, name, h, opts)
    if (opts.remote !== undefined)
      await w.conns.attachRemote(checkRemote<RemoteTransport>(opts.remote, WORKER_PORT, "SlotWorker.connect"))
    else await w.conns.attach(opts.waitForHubMs ?? 0)
    w.lifetime.serves()
    return w
  }

  /**
   * Connect to the hub listening as `name` and serve the functions of `api` to its RPC calls (`bus.remote()`,
   * `bus.invoke()`): each runs with `this` the api object, its arguments and result crossing as JSON or CBOR
   * (Map, Set, Date, BigInt, typed arrays, cycles: docs/PROTOCOL.md §6.1.1), the same between Bun and Node.
   * Export `typeof api` for the hub's typing. Functions wrapped in `withSignal` get the call's AbortSignal first.
   */
  static async expose(name: string, api: object, opts: ExposeOptions = {}): Promise<SlotWorker> {
    checkOptions(opts, EXPOSE_OPTIONS, "SlotWorker.expose")
    const { handler, ...connect } = opts
    if (handler !== undefined && typeof handler !== "function")
      throw new TypeError("SlotWorker.expose: handler must be a function (req) => reply")
    return SlotWorker.connect(name, rpcHandler(api, handler) as SlotHandler, connect)
  }

  get connected(): boolean {
    return this.conns.connected
  }

  /** @internal The front this connection serves (§15), -1 while none; its pid. */
  get frontIndex(): number {
    return this.conns.frontIndex
  }
  get hubPid(): number {
    return this.conns.hubPid
  }
  get reconnect(): boolean {
    return this.opts.reconnect === true
  }

  /** @internal Serve front k over a connection the family started (§15.3). */
  adopt(ptr: Chan, k: number): Promise<boolean> {
    return this.conns.adopt(ptr, k)
  }

  /** @internal Another front of the name, served by a new worker with this one's handler and options. */
  async sibling(ptr: Chan, k: number): Promise<FrontMember | null> {
    const s = new SlotWorker(FACTORY, this.name, this.handler, { ...this.opts, reconnect: false }, this)
    return (await s.adopt(ptr, k)) ? s : null
  }

  /** @internal Ends a root whose fronts are all gone. */
  finish(reason: "hub-gone" | "hub-closed") {
    this.conns.finish({ reason })
  }

  /** @internal The front that started it is gone (§15.4): it serves on `lingerMs`, drains, and may exit. */
  orphaned(lingerMs?: number) {
    this.lifetime.orphaned(lingerMs)
  }

  /** Requests answered, and handlers running now. */
  stats() {
    const f = this.conns.familyStats()
    return { served: this.serving.served + f.served, active: this.serving.active + f.active, connected: this.connected }
  }

  /**
   * Graceful stop: the hub is asked to send nothing new, everything it already sent is answered (for up to
   * timeoutMs, default 5000), then the worker disconnects.
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    let timeoutMs: number
    try {
      timeoutMs = closeTimeoutMs(opts, "worker.close")
    } catch (e) {
      return Promise.reject(e)
    }
    return this.conns.close(timeoutMs)
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}
