// nodeHandler's way for a request with no body (issue 78): the request's head goes to the bus as the strings it sends
// and a whole answer is written from its bytes, with no WHATWG Request, Headers, Response or stream made in between
// (on Node those cost the front more than the transport: docs/perf/round-nine-node.md). Anything else — a body, a
// target or a header a Request would rewrite or refuse, a streamed answer, a head node:http refuses — goes the
// fetch-listener's way, so what a client sees is the same either way.
import type { IncomingMessage, ServerResponse } from "node:http"
import {
  answered,
  closeWhenLast,
  HOP_BY_HOP,
  holding,
  pipelined,
  Refused,
  requestOf,
  writeResponse,
} from "./fetch-listener.ts"
import { refuseHost } from "./request-target.ts"

/** A request as the head listener hands it on: method, path and query, its headers (names lower-case). */
export interface RequestHead {
  method: string
  path: string
  headers: [string, string][]
}

/** An answer as the head listener writes it: a whole body (null: none), or `response()` for anything else. */
export interface HeadAnswer {
  readonly status: number
  /** Header pairs, as the worker sent them. */
  readonly head: readonly string[]
  /** The whole body (own bytes, written as they are), or null for an answer `response()` writes. */
  readonly whole: Uint8Array | null
  /** The answer as a Web Response (a streamed one; a whole one whose head node:http would refuse). */
  response(): Response
}

/** The client's hang-up as a signal made only when asked for (the bus reads it once a request is out a while). */
export class ClientGone {
  private ctl: AbortController | null = null
  private left = false
  /** Called once the exchange is over (the answer handed to the socket, or the connection gone). */
  closed: (() => void) | null = null
  get signal(): AbortSignal {
    const ctl = (this.ctl ??= new AbortController())
    if (this.left && !ctl.signal.aborted) this.leave()
    return ctl.signal
  }
  get aborted(): boolean {
    return this.left
  }
  leave() {
    this.left = true
    this.ctl?.abort(new DOMException("the client closed the connection", "AbortError"))
  }
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void
type Send = (head: RequestHead, gone: ClientGone, req: IncomingMessage) => Promise<HeadAnswer>
type OnError = (error: unknown, request: Request) => Response | Promise<Response>

// a target a Request keeps as it is: no dot segment, no %2e, nothing it percent-encodes, no fragment
const PLAIN_TARGET = /^\/[-A-Za-z0-9._~!$&()*+,;=:@/%?]*$/
const REWRITTEN = /\/\.|%2e/i
// what node:http refuses in a header value; a Headers trims a value's outer whitespace
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]|^[\t ]|[\t ]$/
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** `req`'s head as the bus sends it, or null when a Request made of it may differ (then the fallback serves it). */
function headOf(req: IncomingMessage): RequestHead | null {
  const method = req.method
  const target = req.url
  if ((method !== "GET" && method !== "HEAD") || target === undefined) return null
  if (!PLAIN_TARGET.test(target) || REWRITTEN.test(target)) return null
  const raw = req.rawHeaders
  const headers: [string, string][] = []
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    const value = raw[i + 1]!
    if (name[0] === ":" || BAD_VALUE.test(value)) return null
    if (name === "host" && ++hosts > 1) return null
    headers.push([name, value])
  }
  return { method, path: target, headers }
}

/** The answer's headers for writeHead (as writeResponse passes a Response's on), or null if any would be refused. */
function nodeHeaders(
  head: readonly string[],
  length: number,
  headOnly: boolean,
): Record<string, string | string[]> | null {
  const out: Record<string, string | string[]> = {}
  for (let i = 0; i + 1 < head.length; i += 2) {
    const name = head[i]!.toLowerCase()
    const value = head[i + 1]!
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) return null
    if (HOP_BY_HOP.has(name)) continue
    const had = out[name]
    if (name === "set-cookie") out[name] = had === undefined ? [value] : [...(had as string[]), value]
    else out[name] = had === undefined ? value : `${had}, ${value}`
  }
  // node:http frames a body by the Content-Length it is given: the bytes written, whatever the worker's head said (a
  // wrong one would cut this answer or run it into the next on a kept-alive connection); a HEAD's stays the worker's
  if (!headOnly || out["content-length"] === undefined) out["content-length"] = String(length)
  return out
}

function writeWhole(res: ServerResponse, answer: HeadAnswer, headOnly: boolean): Promise<void> | void {
  const body = answer.whole
  const headers = body === null ? null : nodeHeaders(answer.head, body.length, headOnly)
  if (body === null || headers === null) return writeResponse(res, answer.response(), headOnly)
  answered(res)
  closeWhenLast(res)
  res.writeHead(answer.status, headers)
  if (headOnly || body.length === 0) return void res.end()
  holding(res, body.length) // counted written once `res` closes (after its 'finish'): no listener of its own
  res.end(body)
}

/**
 * A node:http request listener that hands a GET or HEAD to `send` as its head and writes a whole answer from its
 * bytes; every other request goes to `fallback` (requestListener's, over the same bus). A failure before the answer
 * is `onError`'s answer, given a Request made then; the client gone by then ends the connection.
 */
export function headListener(fallback: Listener, send: Send, onError: OnError, fallbackHost = "localhost"): Listener {
  return (req, res) => {
    const head = headOf(req)
    const host = req.headers.host
    if (head === null || (host !== undefined && refuseHost([host]) !== null)) return fallback(req, res)
    // as the fallback's: a connection's pipelined GETs go to the bus one at a time, their answers bounded
    pipelined(req.socket, res, () => ask(req, res, head, send, onError, fallbackHost))
  }
}

function ask(
  req: IncomingMessage,
  res: ServerResponse,
  head: RequestHead,
  send: Send,
  onError: OnError,
  fallbackHost: string,
) {
  const gone = new ClientGone()
  res.once("close", () => {
    if (!res.writableFinished) gone.leave()
    gone.closed?.()
  })
  const headOnly = head.method === "HEAD"
  void send(head, gone, req)
    .then(
      (answer) => writeWhole(res, answer, headOnly),
      async (e) => {
        if (gone.aborted) return void res.destroy()
        let response: Response
        try {
          const request = requestOf(req, res, fallbackHost)
          response = request instanceof Refused ? request.response : await onError(e, request)
        } catch (e2) {
          const message = String((e2 as Error)?.message ?? e2)
          response = Response.json({ error: "internal", message }, { status: 500 })
        }
        return writeResponse(res, response, headOnly)
      },
    )
    .catch((e) => res.destroy(e))
}
