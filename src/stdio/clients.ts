// The bus's clients: socket connections and the CLI's stdio (attach), and every line they (or send()) write:
// parsed, checked, and passed on to a worker as a request (its id rewritten), a notification, a cancel, or an
// answer to a request a worker sent. One of the parts a StdioBus owns (bus.ts).
import { checkOptions, optionNames } from "../kit/index.ts"
import type { Books } from "./books.ts"
import type { LimitsConfig } from "./config.ts"
import { BusErrorCode } from "./errors.ts"
import type { Handshakes } from "./handshakes.ts"
import { codeOf, idKey, parseMessage } from "./jsonrpc.ts"
import type { LifecycleView } from "./lifecycle.ts"
import type { Instance, Pending, Pool } from "./pool.ts"
import type { Router } from "./router.ts"
import type { BusClient, JsonRpcId, JsonRpcMessage } from "./types.ts"

const CLIENT_OPTIONS = optionNames<{ sessionPerClient?: boolean }>({ sessionPerClient: true })

/** A message that names a method: a request (with an id) or a notification. */
type Call = JsonRpcMessage & { method: string }

export class Clients {
  private readonly attached = new Set<BusClient>()
  private nextId = 1

  constructor(
    private readonly router: Router,
    private readonly books: Books,
    private readonly handshakes: Handshakes,
    private readonly lifecycle: LifecycleView,
    private readonly limits: LimitsConfig,
  ) {}

  /** Socket (and stdio) clients connected now. */
  get size(): number {
    return this.attached.size
  }

  /** Registers an external client (a socket connection, the CLI's stdio); its lines go through ingest(). */
  attach(deliver: BusClient["deliver"], options: { sessionPerClient?: boolean } = {}): BusClient & { close(): void } {
    checkOptions(options, CLIENT_OPTIONS, "stdio bus.attachClient")
    const client = {
      id: this.nextId++,
      sessionPerClient: options.sessionPerClient !== false,
      deliver,
      close: () => {
        if (!this.attached.delete(client)) return
        this.router.leave(client)
        this.handshakes.forgetOwner(client)
        this.books.leave(client)
      },
    }
    this.attached.add(client)
    return client
  }

  /**
   * One NDJSON line from `client`: a request (id rewritten, routed), a notification (routed), a cancel, or an
   * answer to a request a worker sent earlier. Malformed or unroutable lines are counted and answered when possible.
   */
  async ingest(client: BusClient, line: string): Promise<void> {
    // Lines a client sent before it went away may still wait their turn (Inbound): nobody is left to answer them.
    if (this.gone(client)) return
    const msg = this.parse(client, line)
    if (!msg) return
    if (this.lifecycle.state !== "running") return this.refuseStopping(client, msg)
    // A message naming its pool loses that member on the way: the line as written is not what the worker gets.
    const rewritten = "pool" in msg
    const pool = rewritten ? this.namedPool(client, msg) : this.router.defaultPool
    if (!pool) return
    if (typeof msg.method !== "string") return this.answerWorker(client, msg)
    if (!("id" in msg) && (msg.method === "notifications/cancelled" || msg.method === "$/cancelRequest"))
      return this.passCancel(client, msg)
    return this.forward(client, pool, msg as Call, rewritten ? null : line)
  }

  /** A socket or stdio client that has disconnected (the embedded caller never does). */
  private gone(client: BusClient): boolean {
    return client !== this.router.embedded && !this.attached.has(client)
  }

  /** The line as one JSON-RPC object, or null once it has been refused. */
  private parse(client: BusClient, line: string): JsonRpcMessage | null {
    let msg: unknown
    try {
      msg = parseMessage(line)
    } catch {
      this.router.refuse(
        client,
        null,
        BusErrorCode.ParseError,
        "Parse error: the line is not valid JSON",
        "malformed JSON from a client",
      )
      return null
    }
    if (typeof msg === "object" && msg !== null && !Array.isArray(msg)) return msg as JsonRpcMessage
    this.router.refuse(
      client,
      null,
      BusErrorCode.InvalidRequest,
      "Invalid Request: expected one JSON-RPC object per line (batches are not supported)",
      "not a JSON-RPC object",
    )
    return null
  }

  /** The bus is not running: a request is answered so; anything else is dropped. */
  private refuseStopping(client: BusClient, msg: JsonRpcMessage): void {
    if ("id" in msg && typeof msg.method === "string")
      this.router.answerError(
        client,
        msg.id ?? null,
        BusErrorCode.BusStopping,
        `the bus is ${this.lifecycle.state}`,
        this.router.defaultPool.config.id,
      )
  }

  /** The pool `msg.pool` names, with that member taken off; undefined once an unknown one has been refused. */
  private namedPool(client: BusClient, msg: JsonRpcMessage): Pool | undefined {
    const named = typeof msg.pool === "string" ? this.router.pools.get(msg.pool) : undefined
    if (!named)
      return void this.router.refuse(
        client,
        "id" in msg && msg.method !== undefined ? (msg.id ?? null) : undefined,
        BusErrorCode.UnknownPool,
        `unknown pool ${JSON.stringify(msg.pool)}; pools: ${[...this.router.pools.keys()].join(", ")}`,
        "unknown pool",
      )
    delete msg.pool
    return named
  }

  /** A message without a method: the client's answer to a request a worker sent it, passed back under the worker's id. */
  private async answerWorker(client: BusClient, msg: JsonRpcMessage): Promise<void> {
    if (!("id" in msg))
      return this.router.refuse(
        client,
        null,
        BusErrorCode.InvalidRequest,
        "Invalid Request: a message needs a method or an id",
        "neither method nor id",
      )
    // a request whose method is no string, or an "answer" with neither result nor error: JSON-RPC's Invalid
    // Request, said to the client under its id (dropped as an answer nobody asked for, it left the client waiting)
    if ("method" in msg || !("result" in msg || "error" in msg))
      return this.router.refuse(
        client,
        msg.id,
        BusErrorCode.InvalidRequest,
        "method" in msg
          ? "Invalid Request: a request's method must be a string"
          : "Invalid Request: a message with an id needs a method, or a result or an error",
        "malformed request or answer",
      )
    const target = typeof msg.id === "string" ? this.books.asked.get(msg.id) : undefined
    if (!target) return this.router.routingError("an answer to a request nobody made")
    if (target.client !== client) return this.router.routingError("an answer from a client the request was not sent to")
    this.books.forgetAsked(msg.id as string)
    if (target.instance.generation !== target.generation || !target.instance.live)
      return this.router.routingError("an answer for a worker that has since died", target.instance)
    msg.id = target.originalId
    try {
      await target.instance.out.write(JSON.stringify(msg) + "\n")
    } catch {
      this.router.routingError("an answer for a worker that stopped reading", target.instance)
    }
  }

  /**
   * A client's own cancel (MCP notifications/cancelled, LSP $/cancelRequest) goes to the worker its request went
   * to, under the id that worker saw. One naming nothing this client has in flight is dropped (a race with the
   * answer, or another client's id): passed on as written it would name whatever that worker has under that id.
   */
  private async passCancel(client: BusClient, msg: JsonRpcMessage): Promise<void> {
    const mcp = msg.method === "notifications/cancelled"
    const params = msg.params
    if (typeof params !== "object" || params === null || Array.isArray(params)) return
    const field = mcp ? "requestId" : "id"
    const named = (params as Record<string, unknown>)[field]
    // Read as exactly as the request's own id was (parseMessage), so 12345678901234567890 or 1.50 finds it.
    const key = idKey(named)
    if (key === undefined) return
    const id = this.books.idOf(client, key)
    const p = id === undefined ? undefined : this.books.pending.get(id)
    if (!p || p.abandoned || !p.instance.live || p.instance.generation !== p.generation) return
    // MCP: the answer is not wanted any more (the client ignores it). LSP: the server still answers, and the
    // client waits for that answer.
    if (mcp) this.books.abandon(id!, p, null)
    const out = { ...msg, params: { ...params, [mcp ? "requestId" : "id"]: id } }
    try {
      const queued = p.instance.out.write(`${JSON.stringify(out)}\n`)
      this.books.countClientCancel()
      await queued
    } catch {
      // the worker is gone
    }
  }

  /**
   * A request or notification, to its session's instance (or the least busy one, waiting for one to come up),
   * after the session's handshake if that process has not seen it. `line` is the message as written, if unchanged.
   * A request that cannot be sent is answered with the error.
   */
  private async forward(client: BusClient, pool: Pool, msg: Call, line: string | null): Promise<void> {
    const sessionKey =
      typeof msg.sessionId === "string"
        ? this.router.sessionKey(pool, msg.sessionId)
        : client.sessionPerClient
          ? `${pool.index}\u0001${client.id}`
          : null
    const hasId = "id" in msg
    const originalId = msg.id ?? null
    try {
      const instance =
        this.router.routeNow(pool, sessionKey, client) ??
        (await this.router.route(
          pool,
          sessionKey,
          client,
          performance.now() + this.limits.backpressure_timeout_sec * 1000,
        ))
      if (this.gone(client)) return // it left while its message waited for an instance: nobody to send it for
      const ready = this.handshakes.ready(pool, sessionKey, client, instance, msg.method, msg.params)
      if (!hasId) {
        if (ready) await ready
        if (this.gone(client)) return
        return await instance.out.write((line ?? JSON.stringify(msg)) + "\n")
      }
      await this.request(client, instance, msg, originalId, sessionKey, ready)
    } catch (e) {
      if (hasId) this.router.answerError(client, originalId, codeOf(e as Error), (e as Error).message, pool.config.id)
    }
  }

  /** A client's request onto the books and to `instance` under a bus id, once its session's handshake is `ready`. */
  private async request(
    client: BusClient,
    instance: Instance,
    msg: Call,
    originalId: JsonRpcId,
    sessionKey: string | null,
    ready: Promise<void> | undefined,
  ): Promise<void> {
    const id = this.books.issueId()
    const entry: Pending = {
      instance,
      generation: instance.generation,
      client,
      originalId,
      sessionKey,
      method: msg.method,
      abandoned: false,
      abandonedAt: 0,
      written: false,
    }
    this.books.track(id, entry)
    msg.id = id
    try {
      if (ready) {
        await ready
        if (entry.abandoned) return void this.books.forget(id) // the client left while the handshake was replayed
      }
      await instance.out.write(JSON.stringify(msg) + "\n")
      this.books.markWritten(id, entry)
    } catch (e) {
      this.books.withdraw(id, entry)
      throw e
    }
  }
}
