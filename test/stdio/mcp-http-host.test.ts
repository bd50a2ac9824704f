// An HTTP/1.0 request without a Host header (HTTP/1.0 allows none) at an MCP Streamable HTTP front: no browser sends
// one (a rebound page's request always carries the rebound name), so the DNS-rebinding guard lets it in as it lets in
// one without Origin, on a Bun and a Node front alike (before: 403 `Host ""` from Bun, 200 from Node). One naming a
// Host that is not loopback is still 403 on both.
import { afterAll, describe, expect, test } from "bun:test"
import { connect } from "node:net"
import { join } from "node:path"
import { peerChild, peerSkip, PEER_RUNTIMES, removeNodeBuilds } from "../support/runtime/peers.ts"

const WORKER = join(import.meta.dir, "workers", "exact-worker.ts")
const INIT =
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}'

/** The status line and body of an HTTP/1.0 POST of an initialize, with `host` as its Host header (none if null). */
const post10 = (port: number, host: string | null) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () =>
      socket.write(
        `POST /mcp HTTP/1.0\r\n${host === null ? "" : `Host: ${host}\r\n`}Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${INIT.length}\r\n\r\n${INIT}`,
      ),
    )
    let got = ""
    socket.setTimeout(20_000, () => socket.destroy(new Error("no answer in 20 s")))
    socket.on("data", (d) => (got += d))
    socket.on("end", () => resolve(`${got.split("\r\n")[0]} ${got.slice(got.indexOf("\r\n\r\n") + 4)}`))
    socket.on("error", reject)
  })

describe.each(PEER_RUNTIMES)("MCP Streamable HTTP under %s: an HTTP/1.0 request without Host", (runtime) => {
  afterAll(removeNodeBuilds)
  test.skipIf(peerSkip(runtime) !== null)(
    "is served as one without Origin is (200); a Host that is not loopback is still 403",
    async () => {
      const front = await peerChild(runtime, "runtime/mcp-listen-front.ts", [process.execPath, WORKER], {
        stdin: "pipe",
      })
      try {
        const [, url] = (await front.waitLine(/^ready (\S+)$/, 60_000)) as unknown as [string, string]
        const port = Number(new URL(url).port)
        const none = await post10(port, null)
        expect(none).toMatch(/^HTTP\/1\.[01] 200 /)
        expect(none).toContain('"serverInfo":{"name":"exact"')
        expect(await post10(port, "rebound.example")).toMatch(/^HTTP\/1\.[01] 403 /)
        expect(await post10(port, `127.0.0.1:${port}`)).toMatch(/^HTTP\/1\.[01] 200 /)
      } finally {
        await front.kill()
      }
    },
    90_000,
  )
})
