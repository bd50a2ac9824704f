// Hands an HTTP request to a worker over its bus and turns the slot's answer into a Response.
import type { Server } from "bun"
import {
  BusFullError,
  PayloadTooLargeError,
  RemoteError,
  TimeoutError,
  type BorrowedResponse,
} from "../../core/index.ts"
import { COOKIES_HEADER, STREAM_HEADER, type ControlMessage } from "../wire.ts"
import type { HubCounters } from "./counters.ts"
import type { Liveness } from "./liveness.ts"
import { forwardedFor, json, type ResolvedOptions } from "./options.ts"
import type { Registry, RouteEntry, WorkerInstance } from "./registry.ts"

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
])
const NULL_BODY = new Set([101, 103, 204, 205, 304])
const ONE_WRITE_BYTES = 16 * 1024

export class RequestProxy {
  constructor(
    private readonly o: ResolvedOptions,
    private readonly counters: HubCounters,
    private readonly registry: Registry,
    private readonly liveness: Liveness,
  ) {}

  async forward(req: Request, server: Server<undefined>, entry: RouteEntry, pathAndQuery: string): Promise<Response> {
    this.counters.requests++
    const inst = this.registry.pick(entry)
    if (!inst) return this.unavailable(entry)
    forwardedFor(req, server)
    let body: Uint8Array | undefined
    if (req.body) {
      const read = await this.readBody(req)
      if (!read) {
        this.counters.tooLarge++
        return json(
          413,
          {
            error: "too-large",
            message: `request body is over the hub's limit of ${this.o.maxRequestBodyBytes} bytes`,
          },
          { connection: "close" },
        )
      }
      body = read
    }
    inst.inFlight++
    try {
      // Borrowed: a large body goes from the slot to the socket without a copy in the JS heap.
      const res = await inst.bus.request(
        { method: req.method, path: pathAndQuery, headers: req.headers, body },
        { signal: req.signal, borrow: true },
      )
      inst.served++
      this.liveness.answered(inst)
      this.counters.responses++
      return this.toResponse(res, inst)
    } catch (e) {
      return this.failure(e, inst, req)
    } finally {
      inst.inFlight--
    }
  }

  unavailable(entry: RouteEntry): Response {
    this.counters.unavailable++
    return json(
      503,
      {
        error: "unavailable",
        message: `no worker is serving ${entry.route.method} ${entry.route.pattern} right now; retry shortly`,
      },
      { "retry-after": "1" },
    )
  }

  /** The client's answer when a call to `inst` failed. */
  failure(e: unknown, inst: WorkerInstance | null, req: Request | null): Response {
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
      return json(
        503,
        { error: "unavailable", message: `${where} is saturated; retry shortly` },
        { "retry-after": "1" },
      )
    }
    if (e instanceof PayloadTooLargeError) {
      this.counters.tooLarge++
      return json(413, { error: "too-large", message: "request head or body does not fit a slot" })
    }
    // WorkerGoneError, BusClosedError (evicted), ProtocolError: the worker went away mid-request.
    this.counters.badGateway++
    if (inst) this.liveness.lost(inst, e)
    return json(502, { error: "bad-gateway", message: `${where} went away before answering` })
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

  /** The client's Response; `res`'s slot goes back now (small bodies are copied) or when its stream ends. */
  private toResponse(res: BorrowedResponse, inst: WorkerInstance): Response {
    let lent = false
    try {
      const status = res.status
      if (status < 200 || status > 599) {
        this.counters.badGateway++
        return json(502, { error: "bad-gateway", message: `worker "${inst.name}" answered with status ${status}` })
      }
      let headers = res.headers
      let stream = -1
      let plain = true
      for (const name of res.headers.keys()) if (name.startsWith("x-slotbus-") || HOP_BY_HOP.has(name)) plain = false
      if (!plain) {
        headers = new Headers()
        for (const [name, value] of res.headers) {
          if (name === STREAM_HEADER) stream = Number(value)
          else if (name === COOKIES_HEADER)
            for (const c of JSON.parse(value) as string[]) headers.append("set-cookie", c)
          else if (!HOP_BY_HOP.has(name)) headers.append(name, value)
        }
      }
      if (stream >= 0) this.counters.streamedResponses++
      else if (NULL_BODY.has(status)) return new Response(null, { status, headers })
      else if (res.body.length < ONE_WRITE_BYTES) return new Response(res.body.slice(), { status, headers })
      lent = true
      return new Response(this.slotStream(inst, stream, res), { status, headers })
    } finally {
      if (!lent) res.release()
    }
  }

  /**
   * A large body straight from the slots: `first`'s body, then (for a worker-side stream) each chunk pulled
   * from the worker, borrowed too. A chunk's slot goes back once the client's side has taken it (the next pull:
   * Bun's sink has written or buffered it by then), or when the stream ends or the client goes away.
   */
  private slotStream(inst: WorkerInstance, stream: number, first: BorrowedResponse): ReadableStream<Uint8Array> {
    const pull = JSON.stringify({ op: "pull", stream } satisfies ControlMessage)
    let held: BorrowedResponse | null = first
    let firstSent = false
    let over = false
    const letGo = () => {
      held?.release()
      held = null
    }
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          if (!firstSent) {
            firstSent = true
            if (first.body.length > 0) return c.enqueue(first.body)
          }
          letGo()
          if (stream < 0) return c.close()
          try {
            const chunk = await inst.bus.call(pull, { borrow: true })
            inst.lastSeen = Date.now()
            if (over || chunk.body.length === 0) {
              chunk.release()
              if (!over) c.close()
            } else {
              held = chunk
              c.enqueue(chunk.body)
            }
          } catch {
            this.counters.badGateway++
            c.error(undefined) // the client sees a cut connection: the status line is long gone
          }
        },
        cancel: () => {
          over = true
          letGo()
          if (stream >= 0)
            inst.bus.call(JSON.stringify({ op: "cancel", stream } satisfies ControlMessage)).catch(() => {})
        },
      },
      { highWaterMark: 0 },
    )
  }
}
