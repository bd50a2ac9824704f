// An HTTP server on Bun: Bun.serve (GET /metrics, the status page, the HTTP hub).
import type { HttpServer, ServeOptions } from "../runtime.ts"

export function serveHttp(o: ServeOptions): HttpServer {
  const { unix, hostname, port, idleTimeout, maxRequestBodySize, fetch, error } = o
  const body = maxRequestBodySize !== undefined ? { maxRequestBodySize } : {}
  if (unix !== undefined) return Bun.serve({ unix, fetch, error, ...body })
  return Bun.serve({ hostname, port, fetch, error, ...body, ...(idleTimeout !== undefined ? { idleTimeout } : {}) })
}
