// Server-sent events on the hub: the client connections it holds, and fan-out of workers' events to them.
import type { Server } from "bun"
import { parseRoute, type Params } from "../routes.ts"
import type { ControlMessage, EmitItem, PushItem, PushTarget } from "../wire.ts"
import type { HubCounters } from "./health.ts"
import { forwardedFor, type ResolvedOptions } from "./options.ts"
import type { RequestProxy } from "./proxy.ts"
import { isAttached, type Registry, type RouteEntry, type WorkerInstance } from "./registry.ts"
import { HEARTBEAT, SSE_HEADERS, sseFrame, SseStream } from "./sse-stream.ts"

interface SseClient {
  id: string
  stream: SseStream
  /** The worker instance told about this connection; null for `GET /events` clients. */
  inst: WorkerInstance | null
  path: string
  shape: string
  params: Params
  types: Set<string> | null
  /** Closes the TCP connection within `seconds` unless the response ends first (uWS's per-request timer). */
  closeSocketIn: (seconds: number) => void
}

/** Reasons the hub itself ends a client whose socket it must then close: its data stopped flowing. */
const DROPPED = new Set(["slow", "idle"])

export class SseHub {
  private readonly clients = new Map<string, SseClient>()
  private readonly timers: ReturnType<typeof setInterval>[] = []
  private nextConn = 1
  private eventSeq = 0

  constructor(
    private readonly o: ResolvedOptions,
    private readonly counters: HubCounters,
    private readonly registry: Registry,
    private readonly proxy: RequestProxy,
    private readonly connTag: string,
  ) {}

  start() {
    const sweepMs = Math.max(10, Math.min(1000, Math.floor(this.o.sseIdleTimeoutMs / 4)))
    this.timers.push(setInterval(() => this.heartbeat(), this.o.heartbeatMs), setInterval(() => this.sweep(), sweepMs))
  }

  get counts(): { connections: number; eventsClients: number } {
    let eventsClients = 0
    for (const c of this.clients.values()) if (!c.inst) eventsClients++
    return { connections: this.clients.size - eventsClients, eventsClients }
  }

  /** `GET /events[?types=a,b]`: what workers `emit`. */
  openEvents(req: Request, server: Server<undefined>, query: string): Response {
    server.timeout(req, 0)
    const types = new URLSearchParams(query).get("types")
    const client = this.add(req, server, null, "/events", "/events", types ? new Set(types.split(",")) : null)
    req.signal.addEventListener("abort", () => this.close(client, "client"), { once: true })
    return new Response(client.stream.stream, { headers: SSE_HEADERS })
  }

  /** A worker's SSE route: one of its processes hears of the client and pushes to it. */
  async openRoute(req: Request, server: Server<undefined>, entry: RouteEntry, path: string): Promise<Response> {
    const inst = this.registry.pick(entry)
    if (!inst) return this.proxy.unavailable(entry)
    server.timeout(req, 0)
    forwardedFor(req, server)
    // Registered before the worker hears of it, so events it pushes straight away are not lost.
    const client = this.add(req, server, inst, path, entry.route.shape, null)
    const headers = [...req.headers] as [string, string][]
    const open: ControlMessage = { op: "sse-open", conn: client.id, path: req.url.slice(req.url.indexOf("/", req.url.indexOf("//") + 2)), headers }
    try {
      const reply = JSON.parse(new TextDecoder().decode(await inst.bus.call(JSON.stringify(open)))) as { params: Params }
      client.params = reply.params
    } catch (e) {
      this.clients.delete(client.id)
      this.counters.sseOpened--
      return this.proxy.failure(e, inst, req)
    }
    if (req.signal.aborted) {
      this.close(client, "client")
      return new Response(null, { status: 499 })
    }
    req.signal.addEventListener("abort", () => this.close(client, "client"), { once: true })
    return new Response(client.stream.stream, { headers: SSE_HEADERS })
  }

  /** Ends the streams `inst` held: its worker is gone, so their clients should reconnect elsewhere. */
  closeFor(inst: WorkerInstance) {
    for (const c of [...this.clients.values()]) if (c.inst === inst) this.close(c, "worker-gone")
  }

  closeAll(reason: string) {
    for (const t of this.timers) clearInterval(t)
    for (const c of [...this.clients.values()]) this.close(c, reason)
  }

  emit(e: EmitItem): number {
    if (typeof e?.type !== "string" || typeof e.data !== "string") return 0
    this.counters.emitted++
    const frame = sseFrame({ event: e.type, data: e.data, id: String(++this.eventSeq) })
    let n = 0
    for (const c of [...this.clients.values()]) {
      if (c.inst !== null || (c.types && !c.types.has(e.type))) continue
      this.deliver(c, frame)
      n++
    }
    return n
  }

  push(p: PushItem): number {
    const targets = this.targets(p?.target)
    this.counters.pushed++
    const frame = p.event && typeof p.event.data === "string" ? sseFrame(p.event) : null
    for (const c of targets) {
      if (frame) this.deliver(c, frame)
      if (p.close) this.close(c, "worker")
    }
    return targets.length
  }

  private add(req: Request, server: Server<undefined>, inst: WorkerInstance | null, path: string, shape: string, types: Set<string> | null): SseClient {
    const id = `c${(this.nextConn++).toString(36)}${this.connTag}`
    const client: SseClient = {
      id, inst, path, shape, params: {}, types,
      closeSocketIn: (seconds) => server.timeout(req, seconds),
      stream: new SseStream(this.o.sseMaxBufferedBytes, () => this.close(client, "client")),
    }
    this.clients.set(id, client)
    this.counters.sseOpened++
    return client
  }

  /**
   * Ends a client's stream once and tells its worker why ("client", "slow", "idle", "worker", "hub-closing",
   * "worker-gone"). A dropped client's socket is closed, not just left unwritten: erroring the stream alone
   * leaves the connection (and its fd) open for as long as the client does not read.
   */
  private close(c: SseClient, reason: string) {
    if (!this.clients.delete(c.id)) return
    this.counters.sseClosed++
    if (DROPPED.has(reason)) {
      if (reason === "slow") this.counters.sseDropped++
      else this.counters.sseIdleClosed++
      c.stream.abort()
      c.closeSocketIn(1)
    } else {
      c.stream.end()
      // A client that stopped reading would hold the ended stream open forever: give it the idle timeout to take it.
      if (reason !== "client" && reason !== "hub-closing") c.closeSocketIn(Math.ceil(this.o.sseIdleTimeoutMs / 1000))
    }
    if (c.inst && isAttached(c.inst) && reason !== "worker-gone")
      c.inst.bus.call(JSON.stringify({ op: "sse-close", conn: c.id, reason } satisfies ControlMessage)).catch(() => {})
  }

  private deliver(c: SseClient, frame: Uint8Array) {
    if (!c.stream.send(frame)) this.close(c, "slow")
  }

  /** Drops clients that have taken nothing for sseIdleTimeoutMs while something waited for them. */
  private sweep() {
    const now = performance.now()
    for (const c of [...this.clients.values()]) if (c.stream.stalledMs(now) > this.o.sseIdleTimeoutMs) this.close(c, "idle")
  }

  private heartbeat() {
    for (const c of [...this.clients.values()]) this.deliver(c, HEARTBEAT)
  }

  private targets(t: PushTarget | undefined): SseClient[] {
    if (!t || typeof t !== "object") return []
    if ("conn" in t) {
      const c = this.clients.get(t.conn)
      return c && c.inst ? [c] : []
    }
    if ("path" in t) return [...this.clients.values()].filter((c) => c.inst && c.path.split("?")[0] === t.path)
    if ("pattern" in t) {
      let shape: string
      try {
        shape = parseRoute("GET", t.pattern).shape
      } catch {
        return []
      }
      const want = Object.entries(t.params ?? {})
      return [...this.clients.values()].filter((c) => c.inst && c.shape === shape && want.every(([k, v]) => c.params[k] === String(v)))
    }
    return []
  }
}
