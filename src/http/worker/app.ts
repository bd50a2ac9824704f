// The worker SDK: declare routes with Web-standard handlers, join a hub, serve its requests over slotbus.
// This file is the public face; joining, serving requests and SSE live next to it.
import type { IdleStrategy, SlotReply, SlotRequest } from "../../core/index.ts"
import { closeTimeoutMs, idler } from "../../core/internal.ts"
import { checkName, checkOptions, optionNames } from "../../kit/index.ts"
import { parseRoute } from "../routes.ts"
import { INSTANCE_NAME, WORKER_NAME, type ControlMessage, type PingReply, type RouteDecl } from "../wire.ts"
import { nats } from "../../nats/index.ts"
import { HubClient, type PushTo } from "./client.ts"
import { JoinLoop, type AppState, type HubAppClosed } from "./join.ts"
import { RequestServer, type HubHandler } from "./request.ts"
import { SseRoutes, type SseHandler } from "./sse.ts"

export interface HubWorkerOptions {
  /** The hub's token. Default: $SLOTBUS_HUB_TOKEN, else the token file. */
  token?: string
  /** Default: $SLOTBUS_HUB_TOKEN_FILE, else the hub's default file for its port. */
  tokenFile?: string
  /** Identity of this replica: a restarted replica with the same instance replaces its old entry. Default: the pid. */
  instance?: string
  /** Longest wait between attempts to reach the hub, in ms. Default 5000. */
  maxBackoffMs?: number
  /** How this worker waits for requests (see SlotWorker). Default the core's ("adaptive"). */
  idle?: IdleStrategy
  /** Where the SDK reports a handler's error or a lost hub. Default: console.error. */
  log?: (message: string, error?: unknown) => void
  /**
   * Serve from another host than the hub's, over this NATS server (the hub needs a `nats` option too). `app.emit`
   * publishes into a shared-memory topic: it reaches the hub from another host only when the hub's events span
   * hosts (`createHub({ nats, eventsDurable })`); `app.push` and SSE routes work anywhere.
   */
  nats?: string | Record<string, unknown>
  /** Over NATS: the host name the hub shows for this worker (`/health`, the status page). Default: the hostname. */
  host?: string
  /** End the process on an uncaught error or unhandled rejection (SlotWorker.connect's `exitOnUncaught`). Default true. */
  exitOnUncaught?: boolean
}

const HUB_WORKER_OPTIONS = optionNames<HubWorkerOptions>({
  token: true,
  tokenFile: true,
  instance: true,
  maxBackoffMs: true,
  idle: true,
  log: true,
  nats: true,
  host: true,
  exitOnUncaught: true,
})

/** A worker for the hub at `hubUrl`, serving under `name`. Add routes, then `await app.run()`. */
export function hubWorker(hubUrl: string, name: string, opts: HubWorkerOptions = {}): HubApp {
  return new HubApp(hubUrl, name, opts)
}

export class HubApp {
  private readonly decls: RouteDecl[] = []
  private readonly instance: string
  private readonly client: HubClient
  private readonly requests: RequestServer
  private readonly sseRoutes: SseRoutes
  private readonly join: JoinLoop
  /** Settles when the app stops: `close()`, or a newer registration of the same instance replaced it. */
  readonly closed: Promise<HubAppClosed>

  constructor(
    hubUrl: string,
    readonly name: string,
    opts: HubWorkerOptions = {},
  ) {
    checkOptions(opts, HUB_WORKER_OPTIONS, "hubWorker")
    idler(opts.idle, "hubWorker idle") // used at each join, where a mistake would be retried forever
    const hub = new URL(hubUrl)
    if (hub.protocol !== "http:") throw new TypeError(`hub URL must be http://host:port, got ${hubUrl}`)
    checkName(name, { ...WORKER_NAME, where: "hubWorker" })
    this.instance = checkName(opts.instance ?? String(process.pid), { ...INSTANCE_NAME, where: "hubWorker" })
    const log =
      opts.log ?? ((m, e) => (e === undefined ? console.error(`slotbus: ${m}`) : console.error(`slotbus: ${m}`, e)))
    this.client = new HubClient(hub, opts, log)
    this.requests = new RequestServer(name, log)
    this.sseRoutes = new SseRoutes(name, this.client, log)
    // one NATS connection for this process's worker and events topic, across its rejoins
    const remote = opts.nats === undefined ? undefined : nats(opts.nats)
    this.join = new JoinLoop(this.client, {
      name,
      instance: this.instance,
      idle: opts.idle,
      nats: remote,
      host: opts.host,
      exitOnUncaught: opts.exitOnUncaught,
      maxBackoffMs: opts.maxBackoffMs,
      log,
      routes: () => this.decls,
      serve: (req) => this.serve(req),
      joined: (reply) => {
        this.requests.chunkBytes = reply.chunkBytes
        // a hub whose events span hosts (eventsDurable): open them through NATS, from whichever host this runs on
        void this.client.useTopic(reply.topic, reply.eventsNats ? remote : undefined)
      },
      left: (reason) => {
        this.requests.dropStreams()
        this.sseRoutes.closeAll(reason)
      },
    })
    this.closed = this.join.closed
    void this.closed.then(() => {
      this.requests.stopSweeping()
      this.client.close()
    })
  }

  get<P extends string>(pattern: P, handler: HubHandler<P>): this {
    return this.route("GET", pattern, handler)
  }
  post<P extends string>(pattern: P, handler: HubHandler<P>): this {
    return this.route("POST", pattern, handler)
  }
  put<P extends string>(pattern: P, handler: HubHandler<P>): this {
    return this.route("PUT", pattern, handler)
  }
  patch<P extends string>(pattern: P, handler: HubHandler<P>): this {
    return this.route("PATCH", pattern, handler)
  }
  delete<P extends string>(pattern: P, handler: HubHandler<P>): this {
    return this.route("DELETE", pattern, handler)
  }
  options<P extends string>(pattern: P, handler: HubHandler<P>): this {
    return this.route("OPTIONS", pattern, handler)
  }
  /** Every method on `pattern` (routes with an exact method win). */
  all<P extends string>(pattern: P, handler: HubHandler<P>): this {
    return this.route("*", pattern, handler)
  }

  route<P extends string>(method: string, pattern: P, handler: HubHandler<P>): this {
    if (typeof handler !== "function") throw new TypeError("handler must be a function (req) => Response")
    this.declare(method, pattern, false)
    this.requests.add(parseRoute(method, pattern), handler as unknown as HubHandler) // the table matches what the pattern typed
    return this
  }

  /** An SSE endpoint: the hub holds each client; `handler` hears of its arrival, `push` reaches it. */
  sse<P extends string>(pattern: P, handler: SseHandler<P>): this {
    if (typeof handler !== "function") throw new TypeError("handler must be a function (conn) => cleanup?")
    this.declare("GET", pattern, true)
    this.sseRoutes.add(parseRoute("GET", pattern), handler as unknown as SseHandler)
    return this
  }

  private declare(method: string, pattern: string, sse: boolean) {
    if (this.join.state !== "idle") throw new TypeError("add routes before run()")
    const route = parseRoute(method, pattern)
    const dup = this.decls.find((d) => {
      const r = parseRoute(d.method, d.pattern)
      return r.method === route.method && r.shape === route.shape
    })
    if (dup) throw new TypeError(`route ${route.method} ${pattern} is declared twice (as ${dup.pattern})`)
    this.decls.push({ method: route.method, pattern, sse })
  }

  /** Whether the app is registered and connected to the hub right now. */
  get connected(): boolean {
    return this.join.connected
  }

  /** Where the app is in its life: idle → joining → connected (→ joining again after losing a hub) → closing → closed. */
  get state(): AppState {
    return this.join.state
  }

  stats() {
    return {
      served: this.requests.served,
      streams: this.requests.openStreams,
      sseConnections: this.sseRoutes.size,
      connected: this.connected,
    }
  }

  /**
   * Registers with the hub and starts serving. Resolves once connected; if the hub is not up yet it keeps
   * trying (capped exponential backoff). Rejects on what retrying cannot fix: a route conflict or a bad token.
   * Later, whenever the hub goes away, the app rejoins the next one on its own. A `close()` before it joined
   * resolves it as well (then `closed` says "closed").
   */
  run(): Promise<void> {
    this.requests.startSweeping()
    // Joined means emit is ready too: its topic is open (or the SDK said why not and falls back to HTTP).
    const running = this.join.run().then(() => this.client.topicReady())
    running.catch(() => this.requests.stopSweeping())
    return running
  }

  private serve(req: SlotRequest): SlotReply | Promise<SlotReply> {
    if (req.kind === "raw") return this.control(req.json<ControlMessage>())
    return this.requests.serve(req)
  }

  /** The hub's control messages, which arrive as raw calls no HTTP client can forge. */
  private control(msg: ControlMessage): SlotReply | Promise<SlotReply> {
    switch (msg.op) {
      case "ping":
        return JSON.stringify({
          pid: process.pid,
          instance: this.instance,
          served: this.requests.served,
          active: this.requests.openStreams,
        } satisfies PingReply)
      case "pull":
        return this.requests.pull(msg.stream)
      case "cancel":
        return this.requests.cancel(msg.stream)
      case "sse-open":
        return this.sseRoutes.open(msg.conn, msg.path, msg.headers)
      case "sse-close":
        this.sseRoutes.closed(msg.conn, msg.reason)
        return new Uint8Array(0)
    }
  }

  // --- worker → hub ---------------------------------------------------------------------------------

  /**
   * Publishes an event to the hub's `GET /events` clients (those whose `?types=` and `?routing.<key>=` match):
   * straight into the hub's shared-memory events topic, no HTTP. Resolves with the event's id (its SSE `id:`).
   */
  emit(type: string, data: unknown, routing?: Record<string, string>): Promise<number> {
    return this.client.emit(type, data, routing)
  }

  /** Sends an SSE event to the connections at a path, on a pattern (filtered by params), or to one connection. */
  push(to: PushTo, data: unknown, opts: { event?: string; id?: string } = {}): Promise<number> {
    return this.client.push(to, data, opts)
  }

  /** @internal Queues one item for the hub; items go out in order, batched while a request is in flight. */
  send(path: "emit" | "push", item: unknown): Promise<number> {
    return this.client.send(path, item)
  }

  /**
   * Leaves the hub: deregisters (so no new requests come), lets running handlers and the answers they stream finish
   * for up to `timeoutMs` (default 5 000; what still runs then is cut off), disconnects.
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    let timeoutMs: number
    try {
      timeoutMs = closeTimeoutMs(opts, "app.close")
    } catch (e) {
      return Promise.reject(e)
    }
    return this.join.close(timeoutMs)
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}
