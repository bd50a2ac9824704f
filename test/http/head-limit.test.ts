// The HTTP hub answers a request whose head (method, path, headers) is over what its worker buses take (64 KiB) with
// 431 Request Header Fields Too Large, and a body over maxRequestBodyBytes with 413. Bun answers a head over its own
// limit (16 KiB) 431 before the hub sees it, so the hub here runs with `bun --max-http-header-size` raised past 64 KiB.
import { afterAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { HubHealth } from "../../src/http/index.ts"
import { spawn, stopAll } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"

afterAll(stopAll)

test("slotbus hub answers a head over 64 KiB 431 head-too-large and a body over maxRequestBodyBytes 413, both counted tooLarge", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-head-limit-"))
  const tokenFile = join(dir, "hub.token")
  const hub = spawn([
    process.execPath,
    "--max-http-header-size=262144",
    join(import.meta.dir, "..", "..", "bin", "slotbus.ts"),
    "hub",
    ...["--port", "0", "--token-file", tokenFile, "--max-body-bytes", "4096"],
  ])
  try {
    const [, url] = (await hub.waitLine(/^slotbus hub listening on (http:\S+)$/))!
    await startWorker(url!, "shop", [`--token-file=${tokenFile}`])
    const head = await fetch(`${url}/items/1`, { headers: { "x-big": "y".repeat(70_000) } })
    expect([head.status, await head.json()]).toMatchObject([431, { error: "head-too-large" }])
    const body = await fetch(`${url}/items`, { method: "POST", body: "x".repeat(5000) })
    expect([body.status, await body.json()]).toEqual([
      413,
      {
        error: "too-large",
        // the hub's own option (and its flag), not a bus's maxBodyBytes
        message:
          "request body is over the hub's limit of 4096 bytes; raise maxRequestBodyBytes in createHub's options (slotbus hub --max-body-bytes)",
      },
    ])
    const ok = await fetch(`${url}/items/1`, { headers: { "x-big": "y".repeat(20_000) } })
    expect(ok.status).toBe(200) // over Bun's default, under the hub's: served
    const health = (await (await fetch(`${url}/health`)).json()) as HubHealth
    expect(health.counters.tooLarge).toBe(2)
  } finally {
    hub.signal("SIGTERM")
    await hub.proc.exited
    rmSync(dir, { recursive: true, force: true })
  }
})
