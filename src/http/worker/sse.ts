// The worker's side of server-sent events: the hub holds each client; the worker hears of it and pushes to it.
import type { Params, Route, RouteParams } from "../routes.ts"
import { RouteTable } from "../routes.ts"
import type { PushItem } from "../wire.ts"
import type { HubClient } from "./client.ts"

/** Called when an SSE client connects; may return a function called when it disconnects. */
export type SseHandler<P extends string = string> = (
  conn: SseConnection<RouteParams<P>>,
) => void | (() => void) | Promise<void | (() => void)>

/** One SSE client connected to the hub on one of this worker's `sse` routes. */
export class SseConnection<Ps extends Params = Params> {
  private readonly abort = new AbortController()
  private cleanups: (() => void)[] = []

  constructor(
    private readonly client: HubClient,
    /** The hub's id for this connection; `push({ conn: id }, …)` reaches it alone. */
    readonly id: string,
    readonly path: string,
    readonly params: Ps,
    readonly query: URLSearchParams,
    readonly headers: Headers,
  ) {}

  /** Aborted when the client goes away; `signal.reason` says why ("client", "slow", "idle", "worker", "hub-gone", …). */
  get signal(): AbortSignal {
    return this.abort.signal
  }

  /** Sends one event to this client; resolves with 1 if the hub still had it, 0 if not. */
  send(data: unknown, opts: { event?: string; id?: string } = {}): Promise<number> {
    return this.client.push({ conn: this.id }, data, opts)
  }

  /** Ends the client's stream (an EventSource will reconnect). */
  async close(): Promise<void> {
    await this.client.send("push", { target: { conn: this.id }, close: true } satisfies PushItem)
  }

  /** @internal */
  onClose(f: () => void) {
    if (this.abort.signal.aborted) f()
    else this.cleanups.push(f)
  }

  /** @internal */
  closed(reason: string) {
    if (this.abort.signal.aborted) return
    this.abort.abort(reason)
    for (const f of this.cleanups.splice(0)) {
      try {
        f()
      } catch (e) {
        console.error(`slotbus: SSE close handler for ${this.path} threw`, e)
      }
    }
  }
}

/** This worker's SSE routes and the connections the hub told it about. */
export class SseRoutes {
  private readonly routes = new RouteTable<SseHandler>()
  private readonly conns = new Map<string, SseConnection>()

  constructor(
    private readonly name: string,
    private readonly client: HubClient,
    private readonly log: (message: string, error?: unknown) => void,
  ) {}

  add(route: Route, handler: SseHandler) {
    this.routes.add(route, handler)
  }

  get size(): number {
    return this.conns.size
  }

  /** The hub holds a new client on one of our routes: run its handler; answer the route's params. */
  open(id: string, pathAndQuery: string, headers: [string, string][]): string {
    const q = pathAndQuery.indexOf("?")
    const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q)
    const m = this.routes.match("GET", path)
    if (!m || "allow" in m) throw new Error(`worker ${this.name} has no SSE route for ${path}`)
    const conn = new SseConnection(
      this.client,
      id,
      path,
      m.params,
      new URLSearchParams(q < 0 ? "" : pathAndQuery.slice(q + 1)),
      new Headers(headers),
    )
    this.conns.set(id, conn)
    conn.onClose(() => this.conns.delete(id))
    const out = m.value(conn) // sync throw: the hub answers the client 500
    const keep = (cleanup: void | (() => void)) => typeof cleanup === "function" && conn.onClose(cleanup)
    if (out instanceof Promise) {
      out.then(keep, (e) => {
        this.log(`SSE handler for ${m.route.pattern} failed`, e)
        void conn.close().catch(() => {})
      })
    } else keep(out)
    return JSON.stringify({ params: m.params })
  }

  /** The hub ended connection `id` (the client left, was dropped, …). */
  closed(id: string, reason: string) {
    this.conns.get(id)?.closed(reason)
    this.conns.delete(id)
  }

  closeAll(reason: string) {
    for (const c of [...this.conns.values()]) c.closed(reason)
    this.conns.clear()
  }
}
