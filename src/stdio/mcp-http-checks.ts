// What the MCP Streamable HTTP transport checks of a request before the bus sees it: its Origin and Host (DNS
// rebinding: a page on another site must not reach a server on this machine), its bearer token when one is
// required, its MCP-Protocol-Version, its Accept, and a body bounded in bytes. Each refusal is an HTTP status with a
// JSON-RPC error body that says what to do. And what makes a message JSON-RPC 2.0, checked before it is passed on.
import { hostName, isLoopbackName } from "../runtime/index.ts"
import { sameToken } from "./token.ts"
import type { JsonRpcMessage } from "./types.ts"

/** The protocol revisions this transport speaks (an MCP-Protocol-Version header naming another is refused). */
export const MCP_PROTOCOL_VERSIONS: readonly string[] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]

/** What a request's HTTP-level checks allow; `true` allows anything. */
export interface HttpGuards {
  /** Origins allowed besides none and the loopback ones ("http://localhost:3000", …), lower-cased, or true for any. */
  allowedOrigins: readonly string[] | true
  /** Host header names allowed besides the loopback ones (without port), lower-cased, or true for any. */
  allowedHosts: readonly string[] | true
}

/** A JSON-RPC error answer with an HTTP status (the transport's own refusals). */
export function refusal(status: number, code: number, message: string, headers?: Record<string, string>): Response {
  return Response.json({ jsonrpc: "2.0", id: null, error: { code, message } }, { status, headers })
}

/** The refusal for a request whose Origin or Host is not allowed, or null. */
export function refuseSource(request: Request, guards: HttpGuards): Response | null {
  const origin = request.headers.get("origin")
  if (origin !== null && guards.allowedOrigins !== true && !guards.allowedOrigins.includes(origin.toLowerCase())) {
    const url = URL.parse(origin)
    if (!url || !isLoopbackName(url.hostname))
      return refusal(
        403,
        -32000,
        `Forbidden: Origin ${JSON.stringify(origin)} is not allowed; allow it with allowedOrigins (--allow-origin)`,
      )
  }
  // The Host a rebound page's request carries (a browser always sends one: fetch cannot leave it out), else its
  // URL's. A request with neither (HTTP/1.0 without Host: Bun hands on a bare path, node:http fills in "localhost";
  // HTTP/1.1 demands Host, and both runtimes refuse one without it) is no browser's, as one without Origin is not.
  const host = request.headers.get("host") ?? URL.parse(request.url)?.host ?? ""
  if (guards.allowedHosts !== true && host !== "") {
    const name = hostName(host)
    if (!isLoopbackName(name) && !guards.allowedHosts.includes(name))
      return refusal(
        403,
        -32000,
        `Forbidden: Host ${JSON.stringify(host)} is not allowed; allow it with allowedHosts (--allow-host)`,
      )
  }
  return null
}

/**
 * The CORS headers a browser page needs to use the server, when the request's Origin is one allowed by name or a
 * loopback one; null for none (no Origin, or one let in only by `allowedOrigins: true`: not every site on the web).
 */
export function corsHeaders(request: Request, guards: HttpGuards): Record<string, string> | null {
  const origin = request.headers.get("origin")
  if (origin === null) return null
  const named = guards.allowedOrigins !== true && guards.allowedOrigins.includes(origin.toLowerCase())
  if (!named && !isLoopbackName(URL.parse(origin)?.hostname ?? "")) return null
  return { "access-control-allow-origin": origin, "access-control-expose-headers": "mcp-session-id", vary: "origin" }
}

/** The answer to an OPTIONS request: a CORS preflight's (for an Origin corsHeaders allows) or just the methods. */
export function preflight(request: Request, guards: HttpGuards): Response {
  const headers: Record<string, string> = { allow: "GET, POST, DELETE, OPTIONS" }
  const cors = corsHeaders(request, guards)
  if (cors)
    Object.assign(headers, cors, {
      "access-control-allow-methods": "GET, POST, DELETE",
      "access-control-allow-headers":
        request.headers.get("access-control-request-headers") ??
        "accept, authorization, content-type, last-event-id, mcp-protocol-version, mcp-session-id",
      "access-control-max-age": "600",
    })
  return new Response(null, { status: 204, headers })
}

/** The 401 for a request without `Authorization: Bearer <token>` when a token is required, or null. */
export function refuseToken(request: Request, token: string | null, from: string): Response | null {
  if (token === null) return null
  const m = /^Bearer +(\S+) *$/i.exec(request.headers.get("authorization") ?? "")
  if (m && sameToken(m[1], token)) return null
  return refusal(401, -32000, `Unauthorized: send Authorization: Bearer <token>, the token ${from}`, {
    "www-authenticate": 'Bearer realm="mcp"',
  })
}

/** The refusal for an MCP-Protocol-Version this transport does not speak, or null (none: 2025-03-26, per the spec). */
export function refuseVersion(request: Request): Response | null {
  const v = request.headers.get("mcp-protocol-version")
  if (v === null || MCP_PROTOCOL_VERSIONS.includes(v)) return null
  return refusal(
    400,
    -32000,
    `Bad Request: unsupported MCP-Protocol-Version ${JSON.stringify(v)}; supported: ${MCP_PROTOCOL_VERSIONS.join(", ")}`,
  )
}

/** Whether the Accept header takes `type` (absent, or a matching range or a wildcard). */
export function accepts(request: Request, type: string): boolean {
  const accept = request.headers.get("accept")
  if (accept === null) return false
  const [major] = type.split("/")
  return accept.split(",").some((part) => {
    const range = part.split(";")[0]!.trim().toLowerCase()
    return range === type || range === `${major}/*` || range === "*/*"
  })
}

/** The request's body as text, or the 413 refusal once it passes `max` bytes (read as it comes, never more). */
export async function readBody(request: Request, max: number): Promise<string | Response> {
  const tooLarge = () =>
    refusal(413, -32600, `Payload Too Large: a message may have at most ${max} bytes (maxBodyBytes)`)
  const declared = Number(request.headers.get("content-length") ?? Number.NaN)
  if (declared > max) return tooLarge()
  if (!request.body) return ""
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = request.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size > max) {
      void reader.cancel().catch(() => {})
      return tooLarge()
    }
    chunks.push(value)
  }
  return new TextDecoder().decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
}

/** A JSON-RPC 2.0 message's members: the only ones passed on. */
export const MEMBERS = new Set(["jsonrpc", "id", "method", "params", "result", "error"])

/**
 * Why `msg` is no JSON-RPC 2.0 message, or null: a server drops such a message without an answer (the MCP SDK's do),
 * so a request passed on would leave its HTTP request waiting for good.
 */
export function notJsonRpc(msg: JsonRpcMessage): string | null {
  if (msg.jsonrpc !== "2.0") return `"jsonrpc" must be "2.0", got ${JSON.stringify(msg.jsonrpc) ?? "none"}`
  if (typeof msg.method === "string") {
    if ("result" in msg || "error" in msg) return "a message with a method has no result or error"
    const params = (msg as { params?: unknown }).params
    if (params !== undefined && (typeof params !== "object" || params === null))
      return "params must be an object or an array"
    return null
  }
  return "id" in msg && ("result" in msg || "error" in msg)
    ? null
    : "a message needs a method, or an id with a result or an error"
}
