// Worker → hub: the token, the internal HTTP endpoints, an outbox that batches push (and emit, when the hub's
// events topic cannot be opened), and the topic `emit` publishes to directly.
import { HubNotFoundError, PayloadTooLargeError } from "../../core/index.ts"
import { checkOptions, optionNames } from "../../kit/index.ts"
import { Topic, type Routing } from "../../events/index.ts"
import { checkRouting } from "../../events/internal.ts"
import { HubAuthError, HubRequestError, RouteConflictError } from "../errors.ts"
import type { Params } from "../routes.ts"
import { defaultTokenFile, readTokenFile, TOKEN_ENV, TOKEN_FILE_ENV } from "../token.ts"
import { INTERNAL_PREFIX, type DeliveryReply, type PushItem, type PushTarget, type SseEvent } from "../wire.ts"
import type { Nats } from "../../nats/index.ts"

/** Where `push` sends an event: an exact path ("/sessions/42/events") or a pattern with some of its params. */
export type PushTo = string | { pattern: string; params?: Params } | { conn: string }

const PUSH_OPTIONS = optionNames<{ event?: string; id?: string }>({ event: true, id: true })
const PUSH_TARGET = optionNames<{ pattern?: string; params?: Params; conn?: string }>({
  pattern: true,
  params: true,
  conn: true,
})

type OutboxPath = "emit" | "push"
const BATCH = 256

export class HubClient {
  private token = ""
  private readonly outbox: { path: OutboxPath; item: unknown; done: PromiseWithResolvers<number> }[] = []
  private flushing = false
  /** The hub's events topic, once open; `emit` publishes to it. */
  private topic: Topic | null = null
  private topicName = ""
  private topicOpening: Promise<void> | null = null

  constructor(
    readonly hub: URL,
    private readonly opts: { token?: string; tokenFile?: string },
    private readonly log: (message: string, error?: unknown) => void = () => {},
  ) {}

  /**
   * The hub (re)registered us and named its events topic: open it afresh, so `emit` publishes where this hub
   * reads (a hub restarted on the same port may hold a new topic under the old name; usually it joined the
   * one this worker kept alive, and reopening finds that). A hub that names none (older), or a topic that
   * cannot be opened, leaves `emit` on HTTP. Emits wait while it opens, so they keep their order.
   */
  useTopic(name: string | undefined, remote?: Nats): Promise<void> {
    const old = this.topic
    this.topicName = name ?? ""
    if (!name) {
      old?.close()
      this.topic = null
      return Promise.resolve()
    }
    const opening = (this.topicOpening = Topic.open(name, remote === undefined ? {} : { remote })
      .then(
        (t) => {
          if (this.topicName !== name) return t.close()
          this.topic = t
          if (old !== t) old?.close()
        },
        (e) => {
          if (this.topicName !== name) return
          this.topic = null
          old?.close()
          this.log(
            `cannot open the hub's events topic "${name}" (${(e as Error).message}); app.emit falls back to an HTTP POST per batch`,
          )
        },
      )
      .finally(() => {
        if (this.topicOpening === opening) this.topicOpening = null
      }))
    return opening
  }

  /** Settles once the topic named at the last registration is open, or known not to open. */
  topicReady(): Promise<void> {
    return this.topicOpening ?? Promise.resolve()
  }

  /** Leaves the events topic (the app closes). */
  close() {
    this.topicName = ""
    this.topic?.close()
    this.topic = null
  }

  /** Reads the token afresh (a restarted hub has a new one). */
  async refreshToken() {
    try {
      this.token = await this.readToken()
    } catch (e) {
      if (!(e instanceof HubNotFoundError)) throw e
      const { path, why } = await this.tokenFile()
      const up = await fetch(new URL("/health", this.hub), { signal: AbortSignal.timeout(1000) }).then(
        () => true,
        () => false,
      )
      const pass = `pass the hub's file as tokenFile or $${TOKEN_FILE_ENV}, or the token as token or $${TOKEN_ENV}`
      if (!up)
        throw new HubNotFoundError(
          `no hub token file at ${path} (${why}) and no hub answers at ${this.hub.origin}; start the hub first, or ${pass}`,
        )
      throw new HubNotFoundError(
        `the hub at ${this.hub.origin} is up, but its token file is not at ${path} (${why}); the hub prints where it wrote ` +
          `it ("token file: …") and may run as another user, with another $XDG_RUNTIME_DIR or with --token-file: ${pass}`,
      )
    }
  }

  private async readToken(): Promise<string> {
    const t = this.opts.token ?? process.env[TOKEN_ENV]
    if (t) return t
    return readTokenFile((await this.tokenFile()).path)
  }

  /** Where the token file is looked for, and why there. */
  private async tokenFile(): Promise<{ path: string; why: string }> {
    if (this.opts.tokenFile) return { path: this.opts.tokenFile, why: "the tokenFile option" }
    const env = process.env[TOKEN_FILE_ENV]
    if (env) return { path: env, why: `$${TOKEN_FILE_ENV}` }
    const port = Number(this.hub.port || 80)
    const { path, why } = await defaultTokenFile(port)
    return { path, why: `the default for port ${port}, in ${why}` }
  }

  /** POSTs `body` to the hub's internal endpoint `op`; throws a typed error for a refusal. */
  async call(op: string, body: unknown): Promise<Response> {
    const res = await fetch(new URL(INTERNAL_PREFIX + op, this.hub), {
      method: "POST",
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    })
    if (res.ok) return res
    const detail = (await res.json().catch(() => ({}))) as {
      message?: string
      conflicts?: { route: string; owner: string }[]
    }
    const message = detail.message ?? `hub answered ${res.status}`
    if (res.status === 401 || res.status === 403)
      throw new HubAuthError(`hub refused ${op} (${res.status}): ${message}`)
    if (res.status === 409 && detail.conflicts) throw new RouteConflictError(message, detail.conflicts)
    throw new HubRequestError(`hub refused ${op} (${res.status}): ${message}`, res.status)
  }

  /** Publishes to the hub's events topic (or POSTs, see useTopic); resolves with the event's id there. */
  emit(type: string, data: unknown, routing?: Routing): Promise<number> {
    if (typeof type !== "string" || type.length === 0 || /[\r\n]/.test(type))
      return Promise.reject(new TypeError("event type must be a non-empty single-line string"))
    if (this.topicOpening) return this.topicOpening.then(() => this.emit(type, data, routing)) // keeps emits in order
    if (this.topic) {
      try {
        return Promise.resolve(this.topic.publish({ type, data: serialize(data), ...(routing && { routing }) }))
      } catch (e) {
        if (e instanceof PayloadTooLargeError)
          return Promise.reject(
            new PayloadTooLargeError(`${e.message.replace(/;.*$/, "")}; start the hub with a larger eventsCapacity`),
          )
        return Promise.reject(e)
      }
    }
    return this.send("emit", { type, data: serialize(data), ...(routing && { routing }) })
  }

  push(to: PushTo, data: unknown, opts: { event?: string; id?: string } = {}): Promise<number> {
    try {
      checkOptions(opts, PUSH_OPTIONS, "push")
      if (typeof to !== "string") {
        checkOptions(to, PUSH_TARGET, "push target", { noun: "target field" })
        if (!("pattern" in to) && !("conn" in to))
          throw new TypeError("push target must be a path, { pattern, params } or { conn }")
      }
    } catch (e) {
      return Promise.reject(e)
    }
    const target: PushTarget = typeof to === "string" ? { path: to } : to
    const event: SseEvent = {
      data: serialize(data),
      ...(opts.event !== undefined && { event: opts.event }),
      ...(opts.id !== undefined && { id: opts.id }),
    }
    return this.send("push", { target, event } satisfies PushItem)
  }

  /** Queues one item for the hub; items go out in order, batched while a request is in flight. */
  send(path: OutboxPath, item: unknown): Promise<number> {
    if (path === "emit") {
      const routing = (item as { routing?: unknown } | null)?.routing
      try {
        if (routing != null) checkRouting(routing, "routing") // as the topic's publish: JSON sends a Map as {}
      } catch (e) {
        return Promise.reject(e)
      }
    }
    const done = Promise.withResolvers<number>()
    this.outbox.push({ path, item, done })
    if (!this.flushing) void this.flush()
    return done.promise
  }

  private async flush() {
    this.flushing = true
    while (this.outbox.length > 0) {
      const path = this.outbox[0]!.path
      let n = 0
      while (n < this.outbox.length && n < BATCH && this.outbox[n]!.path === path) n++
      const batch = this.outbox.splice(0, n)
      try {
        if (!this.token) this.token = await this.readToken()
        const items = batch.map((b) => b.item)
        const res = await this.call(path, items).catch(async (e) => {
          if (!(e instanceof HubAuthError)) throw e
          this.token = await this.readToken() // a restarted hub has a new token
          return this.call(path, items)
        })
        const reply = (await res.json()) as DeliveryReply
        batch.forEach((b, i) => b.done.resolve(reply.delivered[i] ?? 0))
      } catch (e) {
        for (const b of batch) b.done.reject(e)
      }
    }
    this.flushing = false
  }
}

function serialize(data: unknown): string {
  return typeof data === "string" ? data : (JSON.stringify(data) ?? "null")
}
