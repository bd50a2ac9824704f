// An instrument()ed node:http front for test/core/observe/hangup.test.ts, under Bun's node:http or Node's: /hold/<id>
// answers only once its client has gone (never, to that client), /metrics answers metricsText. Prints "port <port>".
import http from "node:http"
import type { AddressInfo } from "node:net"
import { httpRoute, instrument } from "../../../src/index.ts"
import { metricsText } from "../../../src/status/index.ts"

const server = http.createServer(
  instrument(async (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === "/metrics") return res.end(await metricsText([]))
    httpRoute(req, "/hold/:id")
    res.on("close", () => res.destroy()) // nothing is written: the client hung up first
  }),
)
server.listen(0, "127.0.0.1", () => console.log(`port ${(server.address() as AddressInfo).port}`))
