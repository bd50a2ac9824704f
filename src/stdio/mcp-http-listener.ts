// `bus.listen("http:127.0.0.1:8080")`: an HTTP server of its own for the MCP Streamable HTTP transport, one
// endpoint per pool: `/mcp` serves the configuration's first pool, `/mcp/<pool id>` each pool by name.
import { checkPort, within } from "../kit/index.ts"
import { hostProblem, serveHttp, targetPath, type HttpServer } from "../runtime/index.ts"
import { refusal } from "./mcp-http-checks.ts"
import { binding } from "./errors.ts"
import { newToken, removeTokenFile, writeTokenFile } from "./token.ts"
import { McpHttpHandler } from "./mcp-http.ts"
import type { McpHttpHost, McpHttpOptions } from "./mcp-http-options.ts"

/** How long close() lets its connections finish what they write before it cuts them. */
const CLOSE_GRACE_MS = 1000

export type McpHttpListenOptions = Omit<McpHttpOptions, "pool" | "bearerToken"> & {
  /** The first pool's endpoint (default "/mcp"); each pool is also at `<path>/<pool id>`. */
  path?: string
  /**
   * A new token is written to this file (0600, this user's) and every request must carry `Authorization: Bearer
   * <token>` (401 otherwise); the file goes when the listener closes. Default: no token.
   */
  tokenFile?: string
}

export interface HttpAddress {
  kind: "http"
  hostname: string
  port: number
}

/** "http:127.0.0.1:8080", "http:8080" (loopback), "http://localhost:8080"; port 0 picks one. */
export function parseHttpAddress(spec: string): HttpAddress {
  const m = /^http:(?:\/\/)?(?:\[?([^\]/]*?)\]?:)?(\d{1,5})\/?$/.exec(spec)
  const port = m ? Number(m[2]) : Number.NaN
  if (!m || port > 65535)
    throw new TypeError(`"${spec}" is not an HTTP address: use http:127.0.0.1:8080 (http:0 picks a free port)`)
  // an MCP client (a browser's page, Node's fetch) could not connect to a bad port the server would listen on
  checkPort(port, { what: "its port", error: (p) => new TypeError(`"${spec}": ${p.message}`) })
  return { kind: "http", hostname: m[1] || "127.0.0.1", port }
}

/**
 * A request's path, or the 400 for one whose Host is no host[:port] (Bun.serve hands those on, with a URL that does
 * not parse): read from the URL's text, which is never parsed here.
 */
function pathOf(request: Request): string | Response {
  const host = request.headers.get("host")
  const problem = host === null ? null : hostProblem(host)
  const path = targetPath(request.url)
  if (problem !== null || path === null)
    return refusal(400, -32000, `Bad Request: ${problem ?? "the request has no path"}`)
  return path
}

/** The pool id of a `<path>/<id>` endpoint, "" when it is no percent-encoding (no pool has that id). */
function poolId(at: string, path: string): string {
  try {
    return decodeURIComponent(at.slice(path.length + 1))
  } catch {
    return ""
  }
}

const FACTORY = Symbol("McpHttpListener.open")

/** A path a URL carries as written (a client sends it so): one or more segments of RFC 3986's pchar. */
const PATH = /^(\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+)+$/

export class McpHttpListener {
  readonly address: HttpAddress
  /** The first pool's endpoint, e.g. http://127.0.0.1:8080/mcp. */
  readonly url: string
  /** The handler of each pool, by pool id. */
  readonly handlers: ReadonlyMap<string, McpHttpHandler>
  /** The file holding the bearer token clients must send, or null when none is required. */
  readonly tokenFile: string | null
  private readonly server: HttpServer
  private readonly token: string | null
  private accepting = true

  private constructor(
    key: symbol,
    server: HttpServer,
    address: HttpAddress,
    path: string,
    handlers: Map<string, McpHttpHandler>,
    token: { file: string; token: string } | null,
  ) {
    if (key !== FACTORY) throw new TypeError('McpHttpListener: use await bus.listen("http:127.0.0.1:8080")')
    this.server = server
    this.address = address
    this.handlers = handlers
    this.tokenFile = token?.file ?? null
    this.token = token?.token ?? null
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
    this.url = `http://${host}:${address.port}${path}`
  }

  static async open(host: McpHttpHost, spec: string, options: McpHttpListenOptions = {}): Promise<McpHttpListener> {
    const address = parseHttpAddress(spec)
    const { path = "/mcp", tokenFile, ...rest } = options
    if (tokenFile !== undefined && (typeof tokenFile !== "string" || tokenFile === ""))
      throw new TypeError("listen(): tokenFile must be a path")
    if (typeof path !== "string" || !PATH.test(path) || /\/\.\.?(\/|$)/.test(path))
      throw new TypeError(
        `listen(): path ${JSON.stringify(path)} must be a URL path as a client sends it, like /mcp: segments of letters, digits, -._~!$&'()*+,;=:@ and %XX, no . or .. segment, not ending with /`,
      )
    const token = tokenFile === undefined ? null : { file: tokenFile, token: newToken() }
    const from = `in ${tokenFile}`
    const handlers = new Map<string, McpHttpHandler>()
    for (const p of host.config.pools)
      handlers.set(p.id, new McpHttpHandler(host, { ...rest, pool: p.id, bearerToken: token?.token }, from))
    const first = handlers.get(host.config.pools[0]!.id)!
    let self: McpHttpListener | undefined
    const server = await binding(spec, () =>
      serveHttp({
        hostname: address.hostname,
        port: address.port,
        // Bun.serve's default, said for node:http too, whose own is 300 s for a request (a stalled body held a socket
        // that long); the handler lifts it once a request's body is in (McpHttpHandler.post)
        idleTimeout: 10,
        fetch(request, srv) {
          // Connection: close, so a keep-alive client reconnects rather than writes to a socket about to be closed
          if (!self?.accepting)
            return refusal(503, -32005, "Service Unavailable: the stdio bus is stopping", { connection: "close" })
          const at = pathOf(request)
          if (typeof at !== "string") return at
          const handler = at === path ? first : at.startsWith(`${path}/`) ? handlers.get(poolId(at, path)) : undefined
          if (!handler)
            return refusal(
              404,
              -32000,
              `Not Found: the MCP endpoints are ${path} and ${[...handlers.keys()].map((id) => `${path}/${id}`).join(", ")}`,
            )
          return handler.fetch(request, srv)
        },
      }),
    )
    try {
      if (token) writeTokenFile(token.file, token.token)
    } catch (e) {
      await server.stop(true)
      throw e
    }
    const port = server.port ?? address.port
    self = new McpHttpListener(FACTORY, server, { ...address, port }, path, handlers, token)
    return self
  }

  /** Sessions open now, over every pool. */
  get sessionCount(): number {
    let n = 0
    for (const h of this.handlers.values()) n += h.sessionCount
    return n
  }

  /** New requests get a 503 from now on; the sessions stay until close(). */
  stopAccepting(): void {
    this.accepting = false
  }

  /** Ends every session and stops the server (open streams are closed, their ends written out). */
  async close(): Promise<void> {
    this.accepting = false
    for (const h of this.handlers.values()) h.close()
    // the streams just ended finish on their connections first: stop(true) at once reset one whose end was not
    // written yet (the client saw ECONNRESET, not an end); a connection still open after CLOSE_GRACE_MS is cut
    await within(this.server.stop(), CLOSE_GRACE_MS)
    await this.server.stop(true)
    if (this.tokenFile) removeTokenFile(this.tokenFile, this.token!)
  }
}
