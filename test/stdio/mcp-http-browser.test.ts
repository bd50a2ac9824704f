// A web page as an MCP client: MCP Streamable HTTP answers a browser's CORS preflight and lets the page read its
// answers and the Mcp-Session-Id header, for Origins the transport allows (loopback ones and allowedOrigins by name),
// and for no other. Raw fetch for the headers, headless Chromium for a page on another port that uses the server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { McpHttpListenOptions } from "../../src/stdio/index.ts"
import { Browser } from "../support/browser.ts"
import { everything, withBus } from "../support/stdio/stdio.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const preflight = (url: string, origin: string | null, extra: Record<string, string> = {}) =>
  fetch(url, {
    method: "OPTIONS",
    headers: {
      ...(origin !== null && { origin }),
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, mcp-session-id",
      ...extra,
    },
  })

const withHttp = (options: McpHttpListenOptions, fn: (url: string) => Promise<void>) =>
  withBus(everything(1), async (bus) => fn((await bus.listen("http:127.0.0.1:0", options)).url))

describe("MCP Streamable HTTP: CORS", () => {
  test("a preflight from a loopback Origin or one allowed by name: 204 with the CORS headers; another Origin 403", async () => {
    await withHttp({ allowedOrigins: ["https://app.example"] }, async (url) => {
      for (const origin of ["http://localhost:5173", "https://app.example"]) {
        const r = await preflight(url, origin)
        expect(r.status).toBe(204)
        expect(r.headers.get("access-control-allow-origin")).toBe(origin)
        expect(r.headers.get("access-control-allow-methods")).toBe("GET, POST, DELETE")
        expect(r.headers.get("access-control-allow-headers")).toBe("content-type, mcp-session-id")
        expect(r.headers.get("vary")).toBe("origin")
      }
      const refused = await preflight(url, "https://evil.example")
      expect(refused.status).toBe(403)
      expect(refused.headers.get("access-control-allow-origin")).toBeNull()
      const plain = await preflight(url, null) // not a browser: the methods, no CORS
      expect(plain.status).toBe(204)
      expect(plain.headers.get("allow")).toBe("GET, POST, DELETE, OPTIONS")
      expect(plain.headers.get("access-control-allow-origin")).toBeNull()
    })
  })

  test("allowedOrigins: true lets any Origin past the check, but grants CORS only to loopback ones", async () => {
    await withHttp({ allowedOrigins: true }, async (url) => {
      const r = await preflight(url, "https://anywhere.example")
      expect(r.status).toBe(204)
      expect(r.headers.get("access-control-allow-origin")).toBeNull()
      expect((await preflight(url, "http://127.0.0.1:8080")).headers.get("access-control-allow-origin")).toBe(
        "http://127.0.0.1:8080",
      )
    })
  })

  test("with a token the preflight needs none, and a page can read the 401 of a POST without it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slotbus-mcp-cors-"))
    try {
      await withHttp({ tokenFile: join(dir, "token") }, async (url) => {
        expect((await preflight(url, "http://localhost:3000", { authorization: "" })).status).toBe(204)
        const r = await fetch(url, {
          method: "POST",
          headers: { origin: "http://localhost:3000", "content-type": "application/json", accept: "application/json" },
          body: "{}",
        })
        expect(r.status).toBe(401)
        expect(r.headers.get("access-control-allow-origin")).toBe("http://localhost:3000")
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

const skip = toolSkipReason("chromium")
sayWhySkipped("an MCP client page in Chromium", skip)

describe.skipIf(skip !== null)("an MCP client page in Chromium", () => {
  let browser: Browser | undefined
  beforeAll(async () => {
    browser = await Browser.launch()
  }, 30_000)
  afterAll(async () => {
    const dataDir = browser?.dataDir
    await browser?.close()
    if (dataDir) expect(Browser.processesOf(dataDir)).toEqual([])
  })

  test("a page on another loopback port initializes, reads its session id and lists the tools", async () => {
    await withHttp({}, async (url) => {
      using page$ = Bun.serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch: () => new Response("<!doctype html><p>app", { headers: { "content-type": "text/html" } }),
      })
      const page = await browser!.newPage()
      try {
        await page.navigate(`http://localhost:${page$.port}/`)
        await page.waitFor<string>("document.body.innerText", (t) => t === "app", "the page loads")
        void page.evaluate(`(async () => {
          const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" }
          try {
            const init = await fetch(${JSON.stringify(url)}, { method: "POST", headers, body: JSON.stringify({
              jsonrpc: "2.0", id: 1, method: "initialize",
              params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "page", version: "1" } } }) })
            const session = init.headers.get("mcp-session-id")
            await init.text()
            const list = await fetch(${JSON.stringify(url)}, { method: "POST",
              headers: { ...headers, accept: "application/json", "mcp-session-id": session, "mcp-protocol-version": "2025-06-18" },
              body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) })
            const tools = (await list.json()).result.tools.map((t) => t.name)
            window.outcome = JSON.stringify({ session: typeof session, echo: tools.includes("echo") })
          } catch (e) { window.outcome = "failed: " + e }
        })()`)
        const outcome = await page.waitFor<string | null>(
          "window.outcome ?? null",
          (v) => v !== null,
          "the page's calls",
        )
        expect(JSON.parse(outcome!)).toEqual({ session: "string", echo: true })
      } finally {
        await page.close()
      }
    })
  }, 30_000)
})
