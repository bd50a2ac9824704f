// An HTTP server on Bun: Bun.serve (GET /metrics, the status page; the HTTP hub calls Bun.serve itself, src/http/README.md).
import type { HttpServer, ServeOptions } from "../runtime.ts"

export const serveHttp = ({ unix, hostname, port, fetch, error }: ServeOptions): HttpServer =>
  unix !== undefined ? Bun.serve({ unix, fetch, error }) : Bun.serve({ hostname, port, fetch, error })
