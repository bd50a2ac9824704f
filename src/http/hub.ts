// The HTTP hub: a Bun.serve front door that routes requests to worker processes over slotbus.
import type { Server } from "bun"
import {
  BusClosedError, BusFullError, PayloadTooLargeError, RemoteError, SlotBus, TimeoutError,
  type IdleStrategy, type SlotResponse,
} from "../core/index.ts"
import { RouteError } from "./errors.ts"
import { methodMatches, parseRoute, RouteTable, type Params, type Route } from "./routes.ts"
import { HEARTBEAT, SSE_HEADERS, sseFrame, SseStream } from "./sse.ts"
import { defaultTokenFile, newToken, removeTokenFile, sameToken, writeTokenFile } from "./token.ts"
import {
  COOKIES_HEADER, INTERNAL_PREFIX, STREAM_HEADER,
  type ControlMessage, type DeliveryReply, type EmitItem, type PingReply, type PushItem, type PushTarget,
  type RegisterReply, type RegisterRequest,
} from "./wire.ts"

export interface HubOptions {
  /** TCP port; 0 picks a free one (read it back from `hub.port`). Default 3200. */
  port?: number
  /** Address to listen on. Default "127.0.0.1". */
  hostname?: string
  /** Token workers must present. Default: a fresh random one per hub. */
  token?: string
  /** Where the token is written (mode 0600). Default `$XDG_RUNTIME_DIR` or tmpdir `/slotbus-hub-<port>.token`. */
  tokenFile?: string
  /** How long a worker may take to answer, in ms; then 504. Default 30 000. */
  timeoutMs?: number
  /** Largest request body; larger ones get 413. Default 8 MiB. */
  maxRequestBodyBytes?: number
  /** Response bodies above this stream from the worker in chunks of this size. Default 1 MiB. */
  chunkBytes?: number
  /** Requests in flight per worker process. Default 32. */
  slots?: number
  /** How the hub waits for workers' answers (see SlotBus). Default "adaptive". */
  idle?: IdleStrategy
  /** Comment line sent to idle SSE clients this often, in ms. Default 15 000. */
  heartbeatMs?: number
  /** An SSE client that lets this many bytes queue up is dropped. Default 1 MiB. */
  sseMaxBufferedBytes?: number
  /** The liveness reaper pings every worker this often, in ms. Default 5000. */
  pingEveryMs?: number
  /** A worker that misses this many pings in a row is evicted. Default 3. */
  maxMissedPings?: number
}

export interface HubWorkerInfo {
  name: string
  instance: string
  pid: number
  routes: string[]
  connected: boolean
  inFlight: number
  served: number
  lastSeen: string
}

export interface HubCounters {
  requests: number
  responses: number
  notFound: number
  methodNotAllowed: number
  tooLarge: number
  unavailable: number
  badGateway: number
  timeouts: number
  workerErrors: number
  clientAborts: number
  unauthorized: number
  forbidden: number
  registrations: number
  conflicts: number
  evictions: number
  streamedResponses: number
  sseOpened: number
  sseClosed: number
  sseDropped: number
  emitted: number
  pushed: number
}

export interface HubHealth {
  status: "ok"
  uptimeMs: number
  startedAt: string
  workers: HubWorkerInfo[]
  routes: { route: string; owner: string; workers: number }[]
  sse: { connections: number; eventsClients: number }
  counters: HubCounters
  evicted: { name: string; instance: string; pid: number; reason: string; at: string }[]
}

interface Instance {
  key: string
  name: string
  instance: string
  pid: number
  bus: SlotBus
  /** The routes this process serves. */
  slots: RouteSlot[]
  lastSeen: number
  connected: boolean
  inFlight: number
  served: number
  missedPings: number
  gone: boolean
}

/** One route (method + shape), owned by one worker name, served by that name's live instances. */
interface RouteSlot {
  route: Route
  owner: string
  sse: boolean
  instances: Instance[]
  next: number
}

interface SseClient {
  id: string
  stream: SseStream
  /** The worker instance told about this connection; null for `GET /events` clients. */
  inst: Instance | null
  path: string
  shape: string
  params: Params
  types: Set<string> | null
}

const NAME = /^[A-Za-z0-9_-]{1,40}$/
const INSTANCE = /^[A-Za-z0-9._-]{1,64}$/
const LINK_CHECK_MS = 100
const CONNECT_GRACE_MS = 10_000
const MiB = 1024 * 1024
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer", "proxy-connection"])
const NULL_BODY = new Set([101, 103, 204, 205, 304])
const ONE_WRITE_BYTES = 16 * 1024

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } })

function option(v: number | undefined, dflt: number, what: string, min = 0): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${what} must be an integer ≥ ${min}, got ${v}`)
  return v
}

/** Starts a hub. Workers join it with `hubWorker(hub.url, name)`. */
export async function createHub(opts: HubOptions = {}): Promise<Hub> {
  const hub = new Hub(opts)
  await hub.start()
  return hub
}

export class Hub {
  readonly token: string
  private server: Server<undefined> | null = null
  private tokenPath = ""
  private readonly routes = new RouteTable<RouteSlot>()
  private readonly instances = new Map<string, Instance>()
  private readonly retired = new Map<string, string>()
  private readonly sse = new Map<string, SseClient>()
  private readonly evicted: HubHealth["evicted"] = []
  private readonly timers: ReturnType<typeof setInterval>[] = []
  private readonly startedAt = Date.now()
  private readonly busTag = newToken().slice(0, 4).replace(/[^A-Za-z0-9]/g, "x")
  private nextBus = 1
  private nextConn = 1
  private eventSeq = 0
  private closing: Promise<void> | null = null
  private readonly counters: HubCounters = {
    requests: 0, responses: 0, notFound: 0, methodNotAllowed: 0, tooLarge: 0, unavailable: 0, badGateway: 0,
    timeouts: 0, workerErrors: 0, clientAborts: 0, unauthorized: 0, forbidden: 0, registrations: 0, conflicts: 0,
    evictions: 0, streamedResponses: 0, sseOpened: 0, sseClosed: 0, sseDropped: 0, emitted: 0, pushed: 0,
  }
  private readonly o: Required<Omit<HubOptions, "token" | "tokenFile" | "idle">> & Pick<HubOptions, "tokenFile" | "idle">

  constructor(opts: HubOptions) {
    this.o = {
      port: option(opts.port, 3200, "port"),
      hostname: opts.hostname ?? "127.0.0.1",
      tokenFile: opts.tokenFile,
      timeoutMs: option(opts.timeoutMs, 30_000, "timeoutMs"),
      maxRequestBodyBytes: option(opts.maxRequestBodyBytes, 8 * MiB, "maxRequestBodyBytes"),
      chunkBytes: option(opts.chunkBytes, MiB, "chunkBytes", 1024),
      slots: option(opts.slots, 32, "slots", 1),
      idle: opts.idle,
      heartbeatMs: option(opts.heartbeatMs, 15_000, "heartbeatMs", 1),
      sseMaxBufferedBytes: option(opts.sseMaxBufferedBytes, MiB, "sseMaxBufferedBytes", 1),
      pingEveryMs: option(opts.pingEveryMs, 5000, "pingEveryMs", 1),
      maxMissedPings: option(opts.maxMissedPings, 3, "maxMissedPings", 1),
    }
    this.token = opts.token ?? newToken()
    if (this.token.length < 16 || /\s/.test(this.token)) throw new RangeError("token must be at least 16 characters without whitespace")
  }

  /** @internal Use createHub(). */
  async start() {
    const idleSeconds = this.o.timeoutMs === 0 ? 0 : Math.min(255, Math.ceil(this.o.timeoutMs / 1000) + 5)
    this.server = Bun.serve({
      port: this.o.port,
      hostname: this.o.hostname,
      idleTimeout: Math.max(idleSeconds, 10),
      maxRequestBodySize: this.o.maxRequestBodyBytes * 2 + MiB,
      fetch: (req, server) => this.fetch(req, server),
      error: () => json(500, { error: "internal", message: "the hub failed to handle this request" }),
    })
    this.tokenPath = this.o.tokenFile ?? defaultTokenFile(this.server.port!)
    try {
      writeTokenFile(this.tokenPath, this.token)
    } catch (e) {
      this.server.stop(true)
      throw e
    }
    this.timers.push(
      setInterval(() => this.checkLinks(), LINK_CHECK_MS),
      setInterval(() => void this.reap(), this.o.pingEveryMs),
      setInterval(() => this.heartbeat(), this.o.heartbeatMs),
    )
  }

  get port(): number {
    return this.server!.port!
  }
  /** Base URL of the hub, e.g. "http://127.0.0.1:3200". */
  get url(): string {
    const host = this.o.hostname.includes(":") ? `[${this.o.hostname}]` : this.o.hostname
    return `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${this.port}`
  }
  /** The file workers read the token from. */
  get tokenFile(): string {
    return this.tokenPath
  }

  private fetch(req: Request, server: Server<undefined>): Response | Promise<Response> {
    const url = req.url
    const start = url.indexOf("/", url.indexOf("//") + 2)
    const q = url.indexOf("?", start)
    const path = q < 0 ? url.slice(start) : url.slice(start, q)
    if (path === "/health") return json(200, this.health())
    if (path === "/events" && req.method === "GET") return this.openEvents(req, server, q < 0 ? "" : url.slice(q))
    if (path.startsWith(INTERNAL_PREFIX)) return this.internal(req, server, path.slice(INTERNAL_PREFIX.length))

    const m = this.routes.match(req.method, path)
    if (m === null) {
      this.counters.notFound++
      return json(404, { error: "not-found", message: `nothing serves ${req.method} ${path}` })
    }
    if ("allow" in m) {
      this.counters.methodNotAllowed++
      const allow = [...new Set(m.allow)].join(", ")
      return json(405, { error: "method-not-allowed", message: `${path} does not take ${req.method}` }, { allow })
    }
    const slot = m.value
    if (slot.sse) return this.openSse(req, server, slot, path)
    return this.proxy(req, server, slot, start < 0 ? "/" : url.slice(start))
  }

  // --- proxying -------------------------------------------------------------------------------------

  private pick(slot: RouteSlot): Instance | null {
    const list = slot.instances
    const n = list.length
    if (n === 1) return list[0]!
    if (n === 0) return null
    let best: Instance | null = null
    const from = slot.next++ % Math.max(n, 1)
    for (let k = 0; k < n; k++) {
      const inst = list[(from + k) % n]!
      if (!inst.connected) this.checkLink(inst) // a new worker counts as soon as it is attached
      if (!best || (inst.connected && !best.connected) || (inst.connected === best.connected && inst.inFlight < best.inFlight)) best = inst
    }
    return best
  }

  private unavailable(slot: RouteSlot) {
    this.counters.unavailable++
    return json(503, { error: "unavailable", message: `no worker is serving ${slot.route.method} ${slot.route.pattern} right now; retry shortly` }, { "retry-after": "1" })
  }

  private async proxy(req: Request, server: Server<undefined>, slot: RouteSlot, pathAndQuery: string): Promise<Response> {
    this.counters.requests++
    const inst = this.pick(slot)
    if (!inst) return this.unavailable(slot)
    forwardedFor(req, server)
    let body: Uint8Array | undefined
    if (req.body) {
      const read = await this.readBody(req)
      if (!read) {
        this.counters.tooLarge++
        return json(413, { error: "too-large", message: `request body is over the hub's limit of ${this.o.maxRequestBodyBytes} bytes` }, { connection: "close" })
      }
      body = read
    }
    inst.inFlight++
    try {
      const res = await inst.bus.request({ method: req.method, path: pathAndQuery, headers: req.headers, body }, { signal: req.signal })
      inst.served++
      inst.connected = true
      inst.lastSeen = Date.now()
      inst.missedPings = 0
      this.counters.responses++
      return this.toResponse(res, inst)
    } catch (e) {
      return this.failure(e, inst, req)
    } finally {
      inst.inFlight--
    }
  }

  private async readBody(req: Request): Promise<Uint8Array | null> {
    const max = this.o.maxRequestBodyBytes
    const declared = req.headers.get("content-length")
    if (declared !== null) return Number(declared) > max ? null : await req.bytes()
    const parts: Uint8Array[] = []
    let total = 0
    for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.length
      if (total > max) return null
      parts.push(chunk)
    }
    return Buffer.concat(parts)
  }

  private toResponse(res: SlotResponse, inst: Instance): Response {
    const status = res.status
    if (status < 200 || status > 599) {
      this.counters.badGateway++
      return json(502, { error: "bad-gateway", message: `worker "${inst.name}" answered with status ${status}` })
    }
    const body = NULL_BODY.has(status) ? null : res.body.length < ONE_WRITE_BYTES ? res.body : oneChunk(res.body)
    let plain = true
    for (const name in res.headers) if (name.startsWith("x-slotbus-") || HOP_BY_HOP.has(name)) plain = false
    if (plain) return new Response(body, { status, headers: res.headers })
    const headers = new Headers()
    let stream = -1
    for (const name in res.headers) {
      const value = res.headers[name]!
      if (name === STREAM_HEADER) stream = Number(value)
      else if (name === COOKIES_HEADER) for (const c of JSON.parse(value) as string[]) headers.append("set-cookie", c)
      else if (!HOP_BY_HOP.has(name)) headers.set(name, value)
    }
    if (stream < 0) return new Response(body, { status, headers })
    this.counters.streamedResponses++
    return new Response(this.pullStream(inst, stream, res.body), { status, headers })
  }

  /** The rest of a large body, pulled chunk by chunk from the worker as the client reads it. */
  private pullStream(inst: Instance, stream: number, first: Uint8Array): ReadableStream<Uint8Array> {
    const pull = JSON.stringify({ op: "pull", stream } satisfies ControlMessage)
    return new ReadableStream<Uint8Array>({
      start: (c) => {
        if (first.length > 0) c.enqueue(first)
      },
      pull: async (c) => {
        try {
          const chunk = await inst.bus.call(pull)
          inst.lastSeen = Date.now()
          if (chunk.length === 0) c.close()
          else c.enqueue(chunk)
        } catch {
          this.counters.badGateway++
          c.error(undefined) // the client sees a cut connection: the status line is long gone
        }
      },
      cancel: () => {
        inst.bus.call(JSON.stringify({ op: "cancel", stream } satisfies ControlMessage)).catch(() => {})
      },
    })
  }

  private failure(e: unknown, inst: Instance | null, req: Request | null): Response {
    const where = inst ? `worker "${inst.name}" (pid ${inst.pid})` : "the worker"
    if (req?.signal.aborted) {
      this.counters.clientAborts++
      return new Response(null, { status: 499 })
    }
    if (e instanceof TimeoutError) {
      this.counters.timeouts++
      return json(504, { error: "timeout", message: `${where} did not answer within ${this.o.timeoutMs}ms` })
    }
    if (e instanceof RemoteError) {
      this.counters.workerErrors++
      return json(500, { error: "worker-error", message: `${where} failed to handle the request` })
    }
    if (e instanceof BusFullError) {
      this.counters.unavailable++
      return json(503, { error: "unavailable", message: `${where} is saturated; retry shortly` }, { "retry-after": "1" })
    }
    if (e instanceof PayloadTooLargeError) {
      this.counters.tooLarge++
      return json(413, { error: "too-large", message: "request head or body does not fit a slot" })
    }
    // WorkerGoneError, BusClosedError (evicted), ProtocolError: the worker went away mid-request.
    this.counters.badGateway++
    if (inst) {
      inst.connected ||= !(e instanceof BusClosedError) // it answered nothing, but it was there to lose
      this.checkLink(inst)
    }
    return json(502, { error: "bad-gateway", message: `${where} went away before answering` })
  }

  // --- registration and liveness --------------------------------------------------------------------

  private async internal(req: Request, server: Server<undefined>, op: string): Promise<Response> {
    const ip = server.requestIP(req)?.address ?? ""
    if (!(ip === "127.0.0.1" || ip === "::1" || ip === "::ffff:127.0.0.1")) {
      this.counters.forbidden++
      return json(403, { error: "forbidden", message: "internal endpoints answer only the local machine" })
    }
    const auth = req.headers.get("authorization")
    if (!sameToken(auth?.startsWith("Bearer ") ? auth.slice(7) : null, this.token)) {
      this.counters.unauthorized++
      return json(401, { error: "unauthorized", message: "send the hub's token as `authorization: Bearer <token>`; workers read it from the hub's token file" })
    }
    if (req.method !== "POST") return json(405, { error: "method-not-allowed", message: "internal endpoints take POST" }, { allow: "POST" })
    let body: unknown
    try {
      body = await req.json()
    } catch {
      return json(400, { error: "bad-request", message: "body must be JSON" })
    }
    switch (op) {
      case "register":
        return this.register(body as RegisterRequest)
      case "deregister":
        return this.deregister(body as { name: string; instance: string })
      case "emit":
        return json(200, { delivered: list<EmitItem>(body).map((e) => this.emit(e)) } satisfies DeliveryReply)
      case "push":
        return json(200, { delivered: list<PushItem>(body).map((p) => this.push(p)) } satisfies DeliveryReply)
      default:
        return json(404, { error: "not-found", message: `no internal endpoint ${op}` })
    }
  }

  private async register(r: RegisterRequest): Promise<Response> {
    const bad = (message: string) => json(400, { error: "bad-request", message })
    if (typeof r?.name !== "string" || !NAME.test(r.name)) return bad(`worker name must match ${NAME.source}`)
    if (typeof r.instance !== "string" || !INSTANCE.test(r.instance)) return bad(`instance must match ${INSTANCE.source}`)
    if (!Number.isInteger(r.pid) || !Array.isArray(r.routes)) return bad("pid and routes are required")
    const replacedBy = r.previousBus ? this.retired.get(r.previousBus) : undefined
    if (replacedBy === "replaced")
      return json(409, { error: "replaced", message: `instance "${r.instance}" of "${r.name}" was replaced by a newer registration; this one stops` })

    const routes: { route: Route; sse: boolean }[] = []
    try {
      for (const d of r.routes) {
        const route = parseRoute(String(d.method), String(d.pattern))
        if (routes.some((x) => x.route.method === route.method && x.route.shape === route.shape))
          return bad(`route ${route.method} ${route.pattern} is declared twice`)
        routes.push({ route, sse: d.sse === true })
      }
    } catch (e) {
      if (e instanceof RouteError) return bad(e.message)
      throw e
    }

    const busName = `hub${this.port}.${r.name}.${this.busTag}${(this.nextBus++).toString(36)}`
    const bus = await SlotBus.listen(busName, {
      slots: this.o.slots,
      maxBodyBytes: Math.max(this.o.maxRequestBodyBytes, this.o.chunkBytes),
      maxHeadBytes: 64 * 1024,
      timeoutMs: this.o.timeoutMs,
      idle: this.o.idle,
    })
    // From here on synchronous, so two registrations racing for one route cannot both win.
    const conflicts: { route: string; owner: string }[] = []
    for (const { route } of routes) {
      const other = this.routes.find((o, s) => s.owner !== r.name && this.isLive(s.owner) && overlaps(o, route))
      if (other) conflicts.push({ route: `${route.method} ${route.pattern}`, owner: other.value.owner })
    }
    if (conflicts.length > 0) {
      void bus.close({ drain: false })
      this.counters.conflicts++
      const list = conflicts.map((c) => `${c.route} (served by "${c.owner}")`).join(", ")
      return json(409, {
        error: "route-conflict", conflicts,
        message: `worker "${r.name}" cannot take ${list}; change the paths, or register under the owner's name to share its load`,
      })
    }

    const key = `${r.name}/${r.instance}`
    const old = this.instances.get(key)
    if (old) this.evict(old, "replaced", false)
    const inst: Instance = {
      key, name: r.name, instance: r.instance, pid: r.pid, bus, slots: [],
      lastSeen: Date.now(), connected: false, inFlight: 0, served: 0, missedPings: 0, gone: false,
    }
    this.instances.set(key, inst)
    bus.waitForWorkers(1, CONNECT_GRACE_MS).then(
      () => void (inst.connected = true),
      () => this.evict(inst, "never connected over shared memory", false),
    )
    for (const { route, sse } of routes) {
      let slot = this.routes.find((o, s) => s.owner === r.name && o.method === route.method && o.shape === route.shape)?.value
      if (!slot) {
        // Whoever else held an overlapping route has no live workers (else it would have conflicted): take it over.
        this.routes.remove((o, s) => s.owner !== r.name && overlaps(o, route))
        slot = { route, owner: r.name, sse, instances: [], next: 0 }
        this.routes.add(route, slot)
      }
      slot.sse = sse
      slot.instances.push(inst)
      inst.slots.push(slot)
    }
    this.counters.registrations++
    return json(200, { bus: busName, chunkBytes: this.o.chunkBytes } satisfies RegisterReply)
  }

  private deregister(r: { name: string; instance: string }): Response {
    const inst = this.instances.get(`${r?.name}/${r?.instance}`)
    if (inst) this.evict(inst, "deregistered", true)
    return json(200, { ok: true })
  }

  private isLive(name: string): boolean {
    for (const inst of this.instances.values()) if (inst.name === name) return true
    return false
  }

  /** Notices workers whose process or connection is gone (SlotBus has no event for it, so this polls). */
  private checkLinks() {
    for (const inst of [...this.instances.values()]) this.checkLink(inst)
  }

  private checkLink(inst: Instance) {
    if (inst.gone) return
    const up = inst.bus.workerCount > 0
    if (up && !inst.connected) {
      inst.connected = true
      inst.lastSeen = Date.now()
    } else if (!up && inst.connected) this.evict(inst, "disconnected", false)
  }

  /** Pings every connected worker over shared memory; evicts those that stop answering. */
  private async reap() {
    const ping = JSON.stringify({ op: "ping" } satisfies ControlMessage)
    await Promise.all([...this.instances.values()].filter((i) => i.connected).map(async (inst) => {
      try {
        const reply = JSON.parse(new TextDecoder().decode(await inst.bus.call(ping, { timeoutMs: this.o.pingEveryMs }))) as PingReply
        inst.lastSeen = Date.now()
        inst.missedPings = 0
        inst.pid = reply.pid
      } catch {
        if (++inst.missedPings >= this.o.maxMissedPings) this.evict(inst, `missed ${inst.missedPings} pings`, false)
        else this.checkLink(inst)
      }
    }))
  }

  private evict(inst: Instance, reason: string, drain: boolean) {
    if (inst.gone) return
    inst.gone = true
    if (this.instances.get(inst.key) === inst) this.instances.delete(inst.key)
    for (const slot of inst.slots) slot.instances = slot.instances.filter((i) => i !== inst)
    for (const c of this.sse.values()) if (c.inst === inst) this.closeClient(c, "worker-gone")
    this.retired.set(inst.bus.name, reason)
    if (this.retired.size > 1000) this.retired.delete(this.retired.keys().next().value!)
    this.evicted.unshift({ name: inst.name, instance: inst.instance, pid: inst.pid, reason, at: new Date().toISOString() })
    this.evicted.length = Math.min(this.evicted.length, 20)
    this.counters.evictions++
    void inst.bus.close({ drain, timeoutMs: this.o.timeoutMs })
  }

  // --- server-sent events ---------------------------------------------------------------------------

  private addClient(inst: Instance | null, path: string, shape: string, types: Set<string> | null): SseClient {
    const id = `c${(this.nextConn++).toString(36)}${this.busTag}`
    const client: SseClient = {
      id, inst, path, shape, params: {}, types,
      stream: new SseStream(this.o.sseMaxBufferedBytes, () => this.closeClient(client, "client")),
    }
    this.sse.set(id, client)
    this.counters.sseOpened++
    return client
  }

  private openEvents(req: Request, server: Server<undefined>, query: string): Response {
    server.timeout(req, 0)
    const types = new URLSearchParams(query).get("types")
    const client = this.addClient(null, "/events", "/events", types ? new Set(types.split(",")) : null)
    req.signal.addEventListener("abort", () => this.closeClient(client, "client"), { once: true })
    return new Response(client.stream.stream, { headers: SSE_HEADERS })
  }

  private async openSse(req: Request, server: Server<undefined>, slot: RouteSlot, path: string): Promise<Response> {
    const inst = this.pick(slot)
    if (!inst) return this.unavailable(slot)
    server.timeout(req, 0)
    forwardedFor(req, server)
    // Registered before the worker hears of it, so events it pushes straight away are not lost.
    const client = this.addClient(inst, path, slot.route.shape, null)
    const headers = [...req.headers] as [string, string][]
    const open: ControlMessage = { op: "sse-open", conn: client.id, path: req.url.slice(req.url.indexOf("/", req.url.indexOf("//") + 2)), headers }
    try {
      const reply = JSON.parse(new TextDecoder().decode(await inst.bus.call(JSON.stringify(open)))) as { params: Params }
      client.params = reply.params
    } catch (e) {
      this.sse.delete(client.id)
      this.counters.sseOpened--
      return this.failure(e, inst, req)
    }
    if (req.signal.aborted) {
      this.closeClient(client, "client")
      return new Response(null, { status: 499 })
    }
    req.signal.addEventListener("abort", () => this.closeClient(client, "client"), { once: true })
    return new Response(client.stream.stream, { headers: SSE_HEADERS })
  }

  /** Ends a client's stream once and tells its worker why ("client", "slow", "worker", "hub-closing", "worker-gone"). */
  private closeClient(c: SseClient, reason: string) {
    if (!this.sse.delete(c.id)) return
    this.counters.sseClosed++
    if (reason === "slow") {
      this.counters.sseDropped++
      c.stream.abort()
    } else c.stream.end()
    if (c.inst && !c.inst.gone && reason !== "worker-gone")
      c.inst.bus.call(JSON.stringify({ op: "sse-close", conn: c.id, reason } satisfies ControlMessage)).catch(() => {})
  }

  private deliver(c: SseClient, frame: Uint8Array) {
    if (!c.stream.send(frame)) this.closeClient(c, "slow")
  }

  private heartbeat() {
    for (const c of [...this.sse.values()]) this.deliver(c, HEARTBEAT)
  }

  private emit(e: EmitItem): number {
    if (typeof e?.type !== "string" || typeof e.data !== "string") return 0
    this.counters.emitted++
    const frame = sseFrame({ event: e.type, data: e.data, id: String(++this.eventSeq) })
    let n = 0
    for (const c of [...this.sse.values()]) {
      if (c.inst !== null || (c.types && !c.types.has(e.type))) continue
      this.deliver(c, frame)
      n++
    }
    return n
  }

  private push(p: PushItem): number {
    const targets = this.targets(p?.target)
    this.counters.pushed++
    const frame = p.event && typeof p.event.data === "string" ? sseFrame(p.event) : null
    for (const c of targets) {
      if (frame) this.deliver(c, frame)
      if (p.close) this.closeClient(c, "worker")
    }
    return targets.length
  }

  private targets(t: PushTarget | undefined): SseClient[] {
    if (!t || typeof t !== "object") return []
    if ("conn" in t) {
      const c = this.sse.get(t.conn)
      return c && c.inst ? [c] : []
    }
    if ("path" in t) return [...this.sse.values()].filter((c) => c.inst && c.path.split("?")[0] === t.path)
    if ("pattern" in t) {
      let shape: string
      try {
        shape = parseRoute("GET", t.pattern).shape
      } catch {
        return []
      }
      const want = Object.entries(t.params ?? {})
      return [...this.sse.values()].filter((c) => c.inst && c.shape === shape && want.every(([k, v]) => c.params[k] === String(v)))
    }
    return []
  }

  // --- health and lifecycle -------------------------------------------------------------------------

  health(): HubHealth {
    this.checkLinks()
    const workers = [...this.instances.values()].map((i) => ({
      name: i.name,
      instance: i.instance,
      pid: i.pid,
      routes: i.slots.map((s) => `${s.sse ? "SSE" : s.route.method} ${s.route.pattern}`),
      connected: i.connected,
      inFlight: i.inFlight,
      served: i.served,
      lastSeen: new Date(i.lastSeen).toISOString(),
    }))
    let eventsClients = 0
    for (const c of this.sse.values()) if (!c.inst) eventsClients++
    return {
      status: "ok",
      uptimeMs: Date.now() - this.startedAt,
      startedAt: new Date(this.startedAt).toISOString(),
      workers,
      routes: this.routes.values().map((s) => ({ route: `${s.sse ? "SSE" : s.route.method} ${s.route.pattern}`, owner: s.owner, workers: s.instances.length })),
      sse: { connections: this.sse.size - eventsClients, eventsClients },
      counters: { ...this.counters },
      evicted: [...this.evicted],
    }
  }

  /** Stops listening, ends SSE streams, disconnects every worker (they retry until a hub is back). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) clearInterval(t)
      for (const c of [...this.sse.values()]) this.closeClient(c, "hub-closing")
      this.server?.stop(true)
      await Promise.all([...this.instances.values()].map((i) => i.bus.close({ drain: false })))
      this.instances.clear()
      if (this.tokenPath) removeTokenFile(this.tokenPath, this.token)
    })()
    return this.closing
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}

/** Two routes contend when their shapes agree and their methods can both take one request. */
function overlaps(a: Route, b: Route): boolean {
  return a.shape === b.shape && (a.method === b.method || methodMatches(a.method, b.method) || methodMatches(b.method, a.method))
}

/**
 * A finished body as a one-chunk stream. Bun.serve writes a fixed body that resolves after the request's
 * tick in ~4 KiB send() calls (64 KiB: 15 syscalls, 3.6x fewer req/s at 16 clients); a stream goes out in
 * one or two, at the price of chunked encoding instead of Content-Length.
 */
function oneChunk(body: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(body)
      c.close()
    },
  })
}

/** Appends the client's address to X-Forwarded-For, as proxies do. */
function forwardedFor(req: Request, server: Server<undefined>) {
  let ip = server.requestIP(req)?.address
  if (!ip) return
  if (ip.startsWith("::ffff:")) ip = ip.slice(7)
  const prev = req.headers.get("x-forwarded-for")
  req.headers.set("x-forwarded-for", prev ? `${prev}, ${ip}` : ip)
}

function list<T>(body: unknown): T[] {
  return (Array.isArray(body) ? body : [body]) as T[]
}
