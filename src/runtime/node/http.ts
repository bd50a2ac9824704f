// The contract's serveHttp over node:http (the status server, the HTTP hub), on fetch-listener.ts.
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { clientError } from "../client-error.ts"
import { closing, incoming, requestListener } from "../fetch-listener.ts"
import type { HttpServer, ServeOptions } from "../runtime.ts"
import { bindTcp, bindUnix } from "./net.ts"

/**
 * Serves `fetch` on node:http. A unix socket is bound before it returns (as Bun's: a path in use throws here); a
 * TCP port is bound once the promise settles (Node looks the hostname up first), its port then known. node:http
 * limits no body, as the contract has it: the handler counts the bytes it reads.
 */
export function serveHttp(o: ServeOptions): HttpServer | Promise<HttpServer> {
  let server: HttpServer
  const node: Server = createServer(
    requestListener(
      (request) => o.fetch(request, server),
      o.error ? (e) => o.error!(e as Error) : undefined,
      o.unix !== undefined ? "localhost" : o.hostname?.includes(":") ? `[${o.hostname}]` : o.hostname,
      true, // as Bun.serve: an answer saying `Connection: close` (the hub's 503 as it stops, a 413) closes its connection
    ),
  )
  // a request node:http cannot parse, pipelined behind others: its 400 once their answers are written, not before
  node.on("clientError", clientError)
  // as Bun's idleTimeout: an idle socket is destroyed (the server has no 'timeout' listener); timeout(request, s) resets it
  if (o.idleTimeout !== undefined) node.setTimeout(o.idleTimeout * 1000)
  server = {
    get hostname() {
      return o.unix !== undefined ? undefined : (node.address() as AddressInfo | null)?.address
    },
    get port() {
      return o.unix !== undefined ? undefined : (node.address() as AddressInfo | null)?.port
    },
    timeout(request, seconds) {
      incoming.get(request)?.socket.setTimeout(seconds * 1000)
    },
    requestIP(request) {
      const s = incoming.get(request)?.socket
      return s?.remoteAddress
        ? { address: s.remoteAddress, family: s.remoteFamily ?? "", port: s.remotePort ?? 0 }
        : null
    },
    stop(closeActive = false) {
      const closed = new Promise<void>((r) => node.close(() => r()))
      if (closeActive) {
        node.closeAllConnections()
        return closed
      }
      // as Bun's stop(): a connection ends once its answers are written, not kept alive to its timeout (an answer
      // from now on says close; one whose head went out before, a stream, is closed once idle)
      closing.add(node)
      node.closeIdleConnections()
      const sweep = setInterval(() => setImmediate(() => node.closeIdleConnections()), 50)
      return closed.finally(() => clearInterval(sweep))
    },
  }
  if (o.unix === undefined) return bindTcp(node, o.port ?? 0, o.hostname ?? "127.0.0.1").then(() => server)
  bindUnix(node, o.unix)
  return server
}
