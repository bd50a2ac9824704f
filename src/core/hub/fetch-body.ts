// bus.fetch's reading of a Request (its path and query; its body, refused at the bus's maxBodyBytes while it is
// read, never after) and the Response it resolves with.
import { PayloadTooLargeError } from "../../errors.ts"
import { StreamedResponse } from "../endpoint/response.ts"

/**
 * A Request URL's path and query, as `new URL(url)`'s pathname + search: cut from the URL as Request serialized
 * it (an http(s) URL's path starts at the first "/" after its host, which holds none; the fragment is left out),
 * for a fifteenth of a URL's cost. Another scheme goes through URL.
 */
export function pathOf(url: string): string {
  const host = url.startsWith("http://") ? 7 : url.startsWith("https://") ? 8 : -1
  // a bare path: Bun.serve's Request of a request with no Host, or one it could not make a URL of
  const at = url[0] === "/" ? 0 : host < 0 ? -1 : url.indexOf("/", host)
  if (at < 0) {
    const u = new URL(url)
    return u.pathname + u.search
  }
  const hash = url.indexOf("#", at)
  return hash < 0 ? url.slice(at) : url.slice(at, hash)
}

/** The buses closeGracefully began to close: their fetch answers tell the client to close its connection. */
export const leaving = new WeakSet<object>()

/**
 * A whole answer comes as a Response already; a streamed one is made one. (Not `instanceof Response`: Hono's Node
 * server replaces the global Response with its own class, which the runtime's Responses are no instances of.)
 */
export function asResponse(res: StreamedResponse | Response, bus: object): Response {
  const response = res instanceof StreamedResponse ? res.toResponse() : res
  if (leaving.has(bus)) response.headers.set("connection", "close")
  return response
}

/** A Request's body, refused at `max` bytes: by its Content-Length before reading, or once more than that arrived. */
export async function bodyUpTo(request: Request, max: number): Promise<Uint8Array | undefined> {
  const stream = request.body
  if (!stream) return undefined
  const tooLarge = (what: string) => {
    stream.cancel().catch(() => {})
    return new PayloadTooLargeError(
      `request body is ${what} bytes, over maxBodyBytes ${max}; raise maxBodyBytes on the hub`,
    )
  }
  const declared = request.headers.get("content-length")
  if (declared !== null && /^\d+$/.test(declared)) {
    if (Number(declared) > max) throw tooLarge(declared)
    // a body longer than it said is refused by request() all the same. arrayBuffer(), not bytes(): Hono's Node
    // server passes a Request look-alike that has no bytes() of its own (Request's, called on it, throws)
    return new Uint8Array(await request.arrayBuffer())
  }
  const reader = stream.getReader()
  const parts: Uint8Array[] = []
  let length = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return Buffer.concat(parts, length)
    length += value.length
    if (length > max) {
      reader.releaseLock()
      throw tooLarge(`over ${length}`)
    }
    parts.push(value)
  }
}
