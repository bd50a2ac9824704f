// What a worker writes on its stdout, line by line: an answer (to the client whose request it names, or to the bus's
// own request), a request to a client (to the session it most likely comes of) or a notification (to the clients
// pinned to the worker, else messages()). The Workers (workers.ts) read the lines; this routes them through the
// Router and settles requests in the Books.
import type { Books } from "./books.ts"
import { BusErrorCode, JsonRpcError } from "./errors.ts"
import type { Handshakes } from "./handshakes.ts"
import { holdsInexact, parseMessage } from "./jsonrpc.ts"
import type { Instance } from "./pool.ts"
import type { Router } from "./router.ts"
import type { BusClient, JsonRpcId, JsonRpcMessage } from "./types.ts"

export class WorkerMessages {
  /** Messages read from workers, and answers that came after their request was given up. */
  readonly counts = { messagesIn: 0, lateResponses: 0 }

  constructor(
    private readonly router: Router,
    private readonly books: Books,
    private readonly handshakes: Handshakes,
  ) {}

  /**
   * Who gets a request a worker sends its client: the owner of its sessionId, or of the one request in flight there it
   * most likely comes of (Books.askee) among the clients pinned to it whose handshake declared the capability the
   * method needs; else the first such client.
   */
  private askee(instance: Instance, msg: JsonRpcMessage): BusClient {
    const owners = this.router.ownersOf(instance, msg)
    if (owners.length <= 1 || typeof msg.sessionId === "string") return owners[0] ?? this.router.embedded
    const needs = CAPABILITY[msg.method!]
    const may = (key: string | null) => needs === undefined || key === null || this.handshakes.declares(key, needs)
    const p = this.books.askee(instance, (p) => owners.includes(p.client!) && may(p.sessionKey))
    if (p) return p.client!
    for (const key of instance.sessions) {
      const owner = this.router.sessions.get(key)?.owner
      if (owner && owners.includes(owner) && may(key)) return owner
    }
    return owners[0]!
  }

  /** One line `instance`'s worker wrote on its stdout, routed to whom it is for. */
  take(instance: Instance, line: string): void {
    this.counts.messagesIn++
    let msg: JsonRpcMessage
    try {
      msg = parseMessage(line) as JsonRpcMessage
      if (typeof msg !== "object" || msg === null || Array.isArray(msg)) throw new Error("not an object")
    } catch {
      this.router.log(
        instance,
        instance.proc?.pid ?? 0,
        "warn",
        `not a JSON-RPC message on stdout (dropped): ${line.slice(0, 200)}`,
      )
      return this.router.routingError("malformed JSON from a worker", instance)
    }
    const poolId = instance.pool.config.id
    if (typeof msg.method !== "string") {
      const id = msg.id
      const p = typeof id === "number" ? this.books.pending.get(id) : undefined
      if (!p && this.books.issued(id)) {
        this.counts.lateResponses++ // given up and dropped from the books already
        return
      }
      if (!p || p.instance !== instance)
        return this.router.routingError(`an answer to no request (id ${JSON.stringify(id)})`, instance)
      this.books.forget(id as number)
      if (p.abandoned) {
        this.counts.lateResponses++
        return
      }
      if (p.resolve) {
        // the bus's own request() resolves with JSON.parse's numbers, not the JSON text kept for the wire
        const m = holdsInexact(msg) ? (JSON.parse(line) as JsonRpcMessage) : msg
        if (m.error && typeof m.error === "object")
          p.reject!(new JsonRpcError(Number(m.error.code), String(m.error.message), m.error.data))
        else p.resolve(m.result)
        return
      }
      msg.id = p.originalId
      p.client!.deliver(msg, poolId, instance.index, line.length)
      return
    }
    if ("id" in msg) {
      const client = this.askee(instance, msg)
      const id = msg.id ?? null
      const busId = (msg.id = this.books.ask(instance, client, id))
      const why = client.deliver(msg, poolId, instance.index, line.length)
      if (typeof why === "string") this.unaskable(instance, busId, id, msg.method, why)
      return
    }
    if (msg.method === "notifications/cancelled") {
      // the worker gives up a request it sent: only the client asked is told, under the id it was given
      const params = msg.params as { requestId?: unknown } | undefined
      const busId = this.books.askedAs(instance, params?.requestId)
      const asked = busId === undefined ? undefined : this.books.asked.get(busId)
      if (asked) {
        this.books.forgetAsked(busId!)
        const cancel = { ...msg, params: { ...params, requestId: busId } }
        return this.notify(asked.client, cancel, poolId, instance.index, line.length)
      }
    }
    const owners = this.router.ownersOf(instance, msg)
    if (owners.length === 0) return this.notify(this.router.embedded, msg, poolId, instance.index, line.length)
    for (const c of owners) this.notify(c, msg, poolId, instance.index, line.length)
  }

  /** A worker's notification to `client`, counted in droppedMessages when the client cannot take it. */
  private notify(client: BusClient, msg: JsonRpcMessage, pool: string, instance: number, size: number): void {
    if (typeof client.deliver(msg, pool, instance, size) === "string") this.router.dropped()
  }

  /**
   * A worker's request its client cannot take (an MCP HTTP session with no SSE stream open): the worker is answered
   * at once with -32603 saying why, and the ask is forgotten and counted as a routing error. Dropped, it left the
   * worker waiting for an answer that could never come.
   */
  private unaskable(instance: Instance, busId: string, id: JsonRpcId, method: string, why: string): void {
    this.books.forgetAsked(busId)
    this.router.routingError(`a ${method} request its client cannot take: ${why}`, instance)
    const error = { code: BusErrorCode.Internal, message: `${method} cannot reach the client: ${why}` }
    try {
      const queued = instance.out.write(`${JSON.stringify({ jsonrpc: "2.0", id, error })}\n`)
      if (queued) queued.catch(() => {}) // the worker is gone, or stuck: its exit or the backpressure error says so
    } catch {
      // the worker is gone
    }
  }
}

/** The client capability a worker's request to its client needs (MCP). */
const CAPABILITY: Readonly<Record<string, string>> = {
  "sampling/createMessage": "sampling",
  "elicitation/create": "elicitation",
  "roots/list": "roots",
}
