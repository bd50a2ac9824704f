// The MCP HTTP transport's optional bearer token: the listener's token file (and `slotbus stdio --http-token-file`),
// the handler's bearerToken; the SDK client with and without the header.
import { afterAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { spawn, until } from "../support/helpers.ts"
import { everythingPool, withBus } from "../support/stdio/stdio.ts"

const DIR = mkdtempSync(join(tmpdir(), "slotbus-mcp-token-"))
afterAll(() => rmSync(DIR, { recursive: true, force: true }))
const pool = everythingPool(1)
const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
}
const post = (url: string, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...headers },
    body: JSON.stringify(INIT),
  })

/** The SDK client's echo through `url` with `token` as its bearer token (none: no header). */
async function echo(url: string, token?: string): Promise<string> {
  const client = new Client({ name: "token-test", version: "1" })
  const requestInit = token === undefined ? undefined : { headers: { authorization: `Bearer ${token}` } }
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit }))
  try {
    const r = (await client.callTool({ name: "echo", arguments: { message: "t" } })) as { content: { text: string }[] }
    return r.content[0]!.text
  } finally {
    await client.close()
  }
}

describe("MCP Streamable HTTP: a bearer token", () => {
  test("listen({ tokenFile }) writes a new 0600 token file; without it or with another token 401 naming the file; the SDK client with it works; the file goes at stop", async () => {
    const file = join(DIR, "listener.token")
    await withBus({ pools: [pool] }, async (bus) => {
      const listener = await bus.listen("http:127.0.0.1:0", { tokenFile: file })
      expect(listener.tokenFile).toBe(file)
      expect(statSync(file).mode & 0o777).toBe(0o600)
      const token = readFileSync(file, "utf8").trim()
      const none = await post(listener.url)
      expect(none.status).toBe(401)
      expect(none.headers.get("www-authenticate")).toStartWith("Bearer")
      expect(await none.text()).toContain(`in ${file}`)
      expect((await post(listener.url, { authorization: "Bearer nope" })).status).toBe(401)
      expect((await post(listener.url, { authorization: `Bearer ${token}` })).status).toBe(200)
      await expect(echo(listener.url)).rejects.toThrow()
      expect(await echo(listener.url, token)).toBe("Echo: t")
      await listener.close()
      expect(existsSync(file)).toBe(false)
    })
  }, 60_000)

  test("mcpHandler({ bearerToken }) in Bun.serve: 401 without it, the SDK client with it works; without the option no token is asked", async () => {
    await withBus({ pools: [pool] }, async (bus) => {
      const guarded = bus.mcpHandler({ bearerToken: "s3cret" })
      const open = bus.mcpHandler()
      const server = Bun.serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch: (r, s) => (new URL(r.url).pathname === "/open" ? open : guarded).fetch(r, s),
      })
      try {
        const url = `http://127.0.0.1:${server.port}/mcp`
        expect((await post(url)).status).toBe(401)
        expect(await echo(url, "s3cret")).toBe("Echo: t")
        expect(await echo(`http://127.0.0.1:${server.port}/open`)).toBe("Echo: t")
        expect(() => bus.mcpHandler({ bearerToken: "" })).toThrow(TypeError)
      } finally {
        await server.stop(true)
      }
    })
  }, 60_000)

  test("slotbus stdio --http-token-file: the listening line names the file, and the SDK client needs its token", async () => {
    const config = join(DIR, "bus.json")
    const file = join(DIR, "cli.token")
    writeFileSync(config, JSON.stringify({ pools: [pool] }))
    const slotbus = join(import.meta.dir, "..", "..", "bin", "slotbus.ts")
    const argv = ["stdio", "--config", config, "--listen", "http:127.0.0.1:0", "--http-token-file", file]
    const bus = spawn([process.execPath, slotbus, ...argv])
    try {
      await until(() => bus.stderr.includes(`bearer token in ${file}`), "the bus listens with a token", 30_000)
      const url = /listening on (http:\S+)/.exec(bus.stderr)![1]!
      expect((await post(url)).status).toBe(401)
      expect(await echo(url, readFileSync(file, "utf8").trim())).toBe("Echo: t")
      bus.signal("SIGTERM")
      expect(await bus.exited).toBe(0)
      expect(existsSync(file)).toBe(false)
    } finally {
      await bus.kill()
    }
  }, 60_000)
})
