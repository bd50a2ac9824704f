// The hub's live view: GET /health/status (serveStatus's page, src/status) and GET /health/stream (the hub's
// status report, hubReport, as server-sent events at once and then every second, while anyone watches). What is
// the hub's own: its watchers are SSE clients like the others (sseMaxBufferedBytes, sseIdleTimeoutMs, counted).
import type { HttpServer as Server } from "../../runtime/index.ts"
import type { StatusReport } from "../../status/index.ts"
import { PAGE_HEADERS, STATUS_PAGE_HTML } from "../../status/internal.ts"
import { json, type ResolvedOptions } from "./options.ts"
import { SSE_HEADERS, sseFrame, SseStream } from "./sse-stream.ts"

const EVERY_MS = 1000

interface Watcher {
  stream: SseStream
  /** Closes the TCP connection within `seconds` unless the response ends first. */
  closeSocketIn: (seconds: number) => void
}

export class StatusStream {
  private readonly watchers = new Set<Watcher>()
  private timer: ReturnType<typeof setInterval> | null = null

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly report: () => Promise<StatusReport>,
  ) {}

  /** Clients reading GET /health/stream. */
  get count(): number {
    return this.watchers.size
  }

  page(req: Request): Response {
    if (req.method !== "GET" && req.method !== "HEAD")
      return json(405, { error: "method-not-allowed", message: "/health/status takes GET" }, { allow: "GET, HEAD" })
    return new Response(req.method === "HEAD" ? null : STATUS_PAGE_HTML, { headers: PAGE_HEADERS })
  }

  async open(req: Request, server: Server<undefined>): Promise<Response> {
    if (req.method !== "GET")
      return json(405, { error: "method-not-allowed", message: "/health/stream takes GET" }, { allow: "GET" })
    server.timeout(req, 0)
    const w: Watcher = {
      stream: new SseStream(this.opts.sseMaxBufferedBytes, () => this.drop(w, "client")),
      closeSocketIn: (seconds) => server.timeout(req, seconds),
    }
    this.watchers.add(w)
    req.signal.addEventListener("abort", () => this.drop(w, "client"), { once: true })
    this.timer ??= setInterval(() => this.tick(), EVERY_MS)
    this.send(w, await this.frame()) // the first report at once (counting this watcher), not a second later
    return new Response(w.stream.stream, { headers: SSE_HEADERS })
  }

  /** Ends every stream (the hub is closing); the page's EventSource retries until a hub is back. */
  closeAll() {
    for (const w of [...this.watchers]) this.drop(w, "hub-closing")
  }

  private async frame(): Promise<Uint8Array> {
    return sseFrame({ event: "status", data: JSON.stringify(await this.report()) })
  }

  private async tick() {
    const frame = await this.frame()
    const now = performance.now()
    for (const w of [...this.watchers]) {
      // A watcher that took nothing for sseIdleTimeoutMs is gone or stuck: its reports would only pile up.
      if (w.stream.stalledMs(now) > this.opts.sseIdleTimeoutMs) this.drop(w, "idle")
      else this.send(w, frame)
    }
  }

  private send(w: Watcher, frame: Uint8Array) {
    if (!this.watchers.has(w)) return // it left while the report was read
    if (!w.stream.send(frame)) this.drop(w, "slow")
  }

  private drop(w: Watcher, reason: "client" | "slow" | "idle" | "hub-closing") {
    if (!this.watchers.delete(w)) return
    if (reason === "slow" || reason === "idle") {
      w.stream.abort()
      w.closeSocketIn(1) // its data stopped flowing: close the socket, not just the stream
    } else w.stream.end()
    if (this.watchers.size === 0 && this.timer) {
      clearInterval(this.timer)
      this.timer = null
    }
  }
}
