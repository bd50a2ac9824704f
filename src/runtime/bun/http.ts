// An HTTP server on Bun: Bun.serve (GET /metrics, the status page, the HTTP hub).
import type { HttpServer, ServeOptions } from "../runtime.ts"

export function serveHttp(o: ServeOptions): HttpServer {
  const { unix, hostname, port, idleTimeout, fetch, error } = o
  // no limit of Bun's own (its default is 128 MiB): the handler counts what it reads, as on node:http (ServeOptions)
  const body = { maxRequestBodySize: Number.MAX_SAFE_INTEGER }
  if (unix !== undefined) return Bun.serve({ unix, fetch, error, ...body })
  return Bun.serve({ hostname, port, fetch, error, ...body, ...(idleTimeout !== undefined ? { idleTimeout } : {}) })
}
