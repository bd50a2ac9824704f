// A node:http request listener in the fetch shape (issue 67): `requestListener` turns a node:http request into a
// WHATWG Request and writes the Response back (status, headers, the body streamed with backpressure). node:http runs
// on Bun too, so it serves a Node code base's own server under either runtime; node-http.ts's serveHttp stands on it.
// Only node:http's types are imported: nothing of it loads until a server calls it (it costs Bun ~20 ms at import).
import type { IncomingMessage, ServerResponse } from "node:http"
import { guardClientErrors } from "./client-error.ts"
import { badRequest, refuseHost, refuseMethod, refuseTarget } from "./request-target.ts"

type Fetch = (request: Request) => Response | Promise<Response>
/** What a failed `fetch` answers; what it throws (or a client gone before the answer) ends the connection. */
type OnError = (error: unknown, request: Request) => Response | Promise<Response>

/** The node:http servers closeGracefully is closing: their answers tell the client to close its connection. */
export const closing = new WeakSet<object>()

/** The node:http request behind each Request a listener made (the status server's `timeout(request, 0)`). */
export const incoming = new WeakMap<Request, IncomingMessage>()

/** The answer to a request that makes no Request (its own class: Hono's Node server replaces the global Response). */
export class Refused {
  readonly response: Response // (no parameter property: Node runs src/runtime with its types stripped)
  constructor(response: Response) {
    this.response = response
  }
}

/**
 * A Request of `req`: its URL (from the Host header, or an absolute-form target), headers, body (streamed, not read
 * yet) and a client-gone signal; or the 400 / 501 answer for a request that makes no Request (see request-target.ts).
 * It throws where a Request refuses what node:http took (a header value): the listener answers that 400 too.
 */
export function requestOf(req: IncomingMessage, res: ServerResponse, fallbackHost: string): Request | Refused {
  const method = req.method ?? "GET"
  const headers = new Headers()
  const hosts: string[] = []
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name[0] === ":") continue
    if (name.length === 4 && name.toLowerCase() === "host") hosts.push(raw[i + 1]!)
    headers.append(name, raw[i + 1]!)
  }
  const refused = refuseMethod(method) ?? refuseHost(hosts)
  if (refused !== null) return new Refused(refused)
  const target = req.url ?? "/"
  const url = target[0] === "/" ? `http://${hosts[0] ?? fallbackHost}${target}` : absoluteForm(target)
  if (url === null)
    return new Refused(badRequest(`the request target ${JSON.stringify(target)} is no path or http URL`))
  const moved = refuseTarget(target)
  if (moved !== null) return new Refused(moved)
  const gone = new AbortController()
  const hasBody = method !== "GET" && method !== "HEAD"
  const request = new Request(url, {
    method,
    headers,
    signal: gone.signal,
    ...(hasBody ? { body: bodyOf(req, gone), duplex: "half" } : {}),
  } as RequestInit)
  // the client went away before the whole answer was written: the worker's request is cancelled
  res.once("close", () => {
    if (!res.writableFinished) gone.abort(new DOMException("the client closed the connection", "AbortError"))
  })
  incoming.set(request, req)
  return request
}

/** An absolute-form target's URL (it names the host, RFC 9112 §3.2.2), unless it is no http URL or has credentials. */
function absoluteForm(target: string): string | null {
  const u = URL.parse(target)
  return u && (u.protocol === "http:" || u.protocol === "https:") && !u.username && !u.password ? u.href : null
}

const BODY_WINDOW = 64 * 1024

const BODY_READ_ALREADY =
  "the request body was read before nodeHandler (a body parser such as express.json() ran first), so the worker " +
  "cannot have it: mount nodeHandler before body parsers, or parse only on the routes the front answers itself"

/** Whether a request's head says a body follows (Content-Length over 0, or Transfer-Encoding). */
const declaresBody = (req: IncomingMessage) =>
  req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0

/**
 * `req`'s body as a stream, read as it is pulled (the socket paused past 64 KiB unread). The client gone mid-body
 * aborts `gone` (the request's signal: bus.fetch counts a cancel, not an error) and errors the stream with its
 * AbortError; cancelled, the rest is read and dropped, so an answer (a 413) still reaches the client.
 */
function bodyOf(req: IncomingMessage, gone: AbortController): ReadableStream<Uint8Array> {
  let open = true
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        // read already (a body parser of Express's ran first): nothing comes any more, so it ends here, not never;
        // one the client sent is gone, and the worker must not take it for an empty one
        if (req.readableEnded) {
          open = false
          if (!declaresBody(req)) return void c.close()
          return void c.error(new TypeError(BODY_READ_ALREADY))
        }
        req.on("data", (b: Buffer) => {
          if (!open) return
          c.enqueue(new Uint8Array(b.buffer, b.byteOffset, b.length))
          if ((c.desiredSize ?? 0) <= 0) req.pause()
        })
        req.once("end", () => open && ((open = false), c.close()))
        req.once("close", () => {
          if (!open || req.complete) return
          open = false
          gone.abort(new DOMException("the client closed the connection before the request body ended", "AbortError"))
          c.error(gone.signal.reason)
        })
      },
      pull: () => void req.resume(),
      cancel() {
        open = false
        req.resume()
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: BODY_WINDOW }),
  )
}

/**
 * The hop-by-hop headers (RFC 9110 §7.6.1, and the old Keep-Alive and Proxy-Connection): a worker's belong to its own
 * connection, not the client's, which the server frames and keeps itself (a worker's `keep-alive: timeout=1` passed
 * on told the client of a timeout this server does not keep). The HTTP hub's proxy drops them too.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
])

/**
 * Writes `response` to `res`: status, headers (each Set-Cookie apart), then the body as it arrives, waiting for the
 * socket to drain. The client gone mid-body cancels the body; the body failing mid-way ends the connection, so the
 * client sees a cut answer (never a hang, never a complete-looking one).
 */
export async function writeResponse(
  res: ServerResponse,
  response: Response,
  head = false,
  honourClose = false,
): Promise<void> {
  answered(res)
  const headers: Record<string, string | string[]> = {}
  // Set-Cookie apart: written one line each
  for (const [name, value] of response.headers)
    if (!HOP_BY_HOP.has(name) && name !== "set-cookie") headers[name] = value
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) headers["set-cookie"] = cookies
  closeWhenLast(res, honourClose && asksClose(response.headers.get("connection")))
  res.writeHead(response.status, response.statusText || undefined, headers)
  // a body that is not the length its Content-Length says ends the connection, not the next answer on it
  if (headers["content-length"] !== undefined) res.strictContentLength = true
  if (response.body === null || head) {
    response.body?.cancel().catch(() => {})
    return void res.end()
  }
  const reader = response.body.getReader()
  const closed = new Promise<void>((r) => res.once("close", r))
  void closed.then(() => reader.cancel().catch(() => {})) // the client went away: stop reading the body
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      if (res.destroyed) return
      if (!res.write(value, writing(res, value.length)))
        await Promise.race([new Promise((r) => res.once("drain", r)), closed])
    }
    res.end()
  } catch (e) {
    res.destroy(e as Error)
  }
}

/**
 * The most requests one connection may have waiting for their answers. node:http stops reading a connection whose
 * client does not read only once an answer is written, and an async answer comes after node:http parsed whatever
 * the client sent: 500 pipelined `GET /metrics` of 30 bytes each queued 500 answers of 8 KB (200 such clients: 0.5
 * GB). A client past this many is cut off; browsers do not pipeline, and the clients that do send far fewer.
 */
export const MAX_PIPELINED = 32
/**
 * The bytes of a connection's answers that may wait in this process to be written before its next request goes to
 * the bus. With one request of a connection at the bus at a time, a client that reads nothing holds at most this
 * and one answer here: 8 clients each pipelining 32 `GET`s of 4 MB held 1 GB before (the cap above counts answers).
 */
export const PIPELINE_BYTES = 1024 * 1024

/**
 * A connection's requests: the latest place given, those arrived and not finished, those at the bus, their answers'
 * bytes not yet written, and the starts waiting their turn.
 */
interface Line {
  latest: number
  unfinished: number
  atBus: number
  unwritten: number
  waiting: (() => void)[]
}
/** A request's turn on its connection's line: its place, whether it is at the bus, its answer's bytes not written. */
interface Turn {
  line: Line
  place: number
  atBus: boolean
  unwritten: number
}
const lines = new WeakMap<object, Line>()
const turns = new WeakMap<ServerResponse, Turn>()

/** Counts `res` among its connection's requests, once, as its request arrives (the listeners, closeGracefully). */
export function arrived(res: ServerResponse, socket: object | null = res.req?.socket ?? res.socket): Turn | undefined {
  const had = turns.get(res)
  if (had !== undefined || !socket) return had
  let line = lines.get(socket)
  if (line === undefined) {
    lines.set(socket, (line = { latest: 0, unfinished: 0, atBus: 0, unwritten: 0, waiting: [] }))
    // a malformed request pipelined after this one: node:http's 400 once the answers before it are written
    guardClientErrors((socket as { server?: unknown }).server)
  }
  const turn: Turn = { line, place: ++line.latest, atBus: false, unwritten: 0 }
  turns.set(res, turn)
  return turn
}

/**
 * While closeGracefully closes its server, or when `asked` (its Response said `Connection: close`): `res` says
 * Connection: close, so its connection closes after it, unless its client pipelined a request after it (node:http
 * would drop that one: its answer says it instead).
 */
export function closeWhenLast(res: ServerResponse, asked = false): void {
  const socket = res.req?.socket ?? res.socket
  const server = (socket as { server?: object } | null)?.server
  const turn = turns.get(res)
  if ((asked || (server && closing.has(server))) && turn?.place === turn?.line.latest) res.shouldKeepAlive = false
}

/** Whether a Connection header's value has the `close` option (RFC 9112 §9.6). */
function asksClose(value: string | null): boolean {
  return value !== null && value.split(",").some((o) => o.trim().toLowerCase() === "close")
}

/**
 * Counts `res` among its connection's requests and calls `start` once it may go to the bus: at once, unless another
 * request of the connection is at the bus or PIPELINE_BYTES of its answers wait to be written (then as they are
 * written, in order, as nginx takes pipelined requests). A connection past MAX_PIPELINED requests is cut off.
 */
export function pipelined(
  socket: object & { destroy(): void; destroyed?: boolean },
  res: ServerResponse,
  start: () => void,
): void {
  const turn = arrived(res, socket)!
  const line = turn.line
  if (line.unfinished >= MAX_PIPELINED) return void socket.destroy()
  line.unfinished++
  res.once("close", () => {
    line.unfinished--
    answered(res)
    release(turn, turn.unwritten)
  })
  if (line.waiting.length === 0 && line.atBus === 0 && line.unwritten < PIPELINE_BYTES) begin(turn, start)
  else line.waiting.push(() => !socket.destroyed && !res.destroyed && begin(turn, start))
}

function begin(turn: Turn, start: () => void) {
  turn.atBus = true
  turn.line.atBus++
  start()
}

/** `res`'s answer is in hand (or never comes): the next request of its connection may go to the bus. */
export function answered(res: ServerResponse): void {
  const turn = turns.get(res)
  if (turn === undefined || !turn.atBus) return
  turn.atBus = false
  turn.line.atBus--
  next(turn.line)
}

/** Counts `n` bytes of `res`'s answer as handed to node:http and not yet written, until `res` closes. */
export function holding(res: ServerResponse, n: number): Turn | undefined {
  const turn = turns.get(res)
  if (turn !== undefined) (turn.unwritten += n), (turn.line.unwritten += n)
  return turn
}

/** `holding`, for a chunk: the function returned (its write callback) counts it written. */
function writing(res: ServerResponse, n: number): () => void {
  const turn = holding(res, n)
  return () => turn && release(turn, n)
}

function release(turn: Turn, n: number) {
  const k = Math.min(n, turn.unwritten) // what `res` closing released already is not released again
  if (k === 0) return
  turn.unwritten -= k
  turn.line.unwritten -= k
  next(turn.line)
}

function next(line: Line) {
  while (line.waiting.length > 0 && line.atBus === 0 && line.unwritten < PIPELINE_BYTES) line.waiting.shift()!()
}

/**
 * A node:http request listener over `fetch`: `createServer(requestListener(fetch))`. What `fetch` throws goes to
 * `onError` for the answer (a 500 naming it without one); the client gone before it answered is left alone. With
 * `honourClose` (serveHttp's, as Bun.serve does), an answer saying `Connection: close` closes its connection after
 * it; without (nodeHandler's), the Connection header of a worker's answer is the worker's, not passed on.
 */
export function requestListener(fetch: Fetch, onError?: OnError, fallbackHost = "localhost", honourClose = false) {
  return (req: IncomingMessage, res: ServerResponse): void =>
    pipelined(req.socket, res, () => answer(req, res, fetch, onError, fallbackHost, honourClose))
}

function answer(
  req: IncomingMessage,
  res: ServerResponse,
  fetch: Fetch,
  onError: OnError | undefined,
  fallbackHost: string,
  honourClose: boolean,
) {
  let made: Request | Refused
  try {
    made = requestOf(req, res, fallbackHost)
  } catch (e) {
    made = new Refused(badRequest(`this request makes no Request: ${(e as Error)?.message ?? e}`))
  }
  if (made instanceof Refused) {
    res.shouldKeepAlive = false // as node:http's own 400s: its body (if any) is not read, the connection ends
    return void writeResponse(res, made.response, req.method === "HEAD").catch((e) => res.destroy(e))
  }
  const request = made
  void (async () => {
    let response: Response
    try {
      response = await fetch(request)
    } catch (e) {
      if (request.signal.aborted) return void res.destroy()
      try {
        if (!onError) throw e
        response = await onError(e, request)
      } catch (e2) {
        response = Response.json({ error: "internal", message: String((e2 as Error)?.message ?? e2) }, { status: 500 })
      }
    }
    await writeResponse(res, response, request.method === "HEAD", honourClose)
  })().catch((e) => res.destroy(e))
}
