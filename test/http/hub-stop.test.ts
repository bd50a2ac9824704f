// `slotbus hub --spawn` stopped (SIGTERM, systemctl stop) while its workers hold requests: the hub answers new requests
// 503 (Connection: close), lets each worker finish what it runs, then stops it and exits 0. The workers here have no
// SIGTERM handler of their own (hubWorker's README example), so a worker SIGTERMed too early dies holding its
// requests and their clients get 502.
import { expect, test } from "bun:test"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { alive, freePort, spawn, until } from "../support/helpers.ts"

const ROOT = join(import.meta.dir, "..", "..")

test("SIGTERM to slotbus hub --spawn: the requests its workers hold are answered, new ones get 503, the hub exits 0", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hub-stop-"))
  const release = join(dir, "release")
  const worker = join(dir, "worker.ts")
  // POST /hold says "held", then answers 201 once the release file exists; GET /ping answers at once
  writeFileSync(
    worker,
    `import { existsSync } from "node:fs"
import { hubWorker } from ${JSON.stringify(join(ROOT, "src", "http", "index.ts"))}
const app = hubWorker(process.env.SLOTBUS_HUB_URL!, "shop")
app.post("/hold", async (req) => {
  const body = await req.text()
  console.log(\`held \${body}\`)
  while (!existsSync(${JSON.stringify(release)})) await Bun.sleep(10)
  return new Response(body, { status: 201 })
})
app.get("/ping", () => new Response("pong"))
await app.run()
console.log(\`ready \${process.pid}\`)
`,
  )
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const hub = spawn([
    process.execPath,
    join(ROOT, "bin", "slotbus.ts"),
    ...["hub", "--port", String(port), "--token-file", join(dir, "hub.token")],
    ...["--spawn", `${process.execPath} ${worker}`, "--instances", "2"],
  ])
  const ready = () => hub.lines.flatMap((l) => /^\[[\w-]+#\d pid (\d+)\] ready \1$/.exec(l)?.[1] ?? []).map(Number)
  const held = () => hub.lines.filter((l) => / held \d+$/.test(l)).length
  try {
    await until(() => ready().length === 2, "two workers ready", 20_000)
    const pids = ready()
    const answers = Array.from({ length: 8 }, (_, i) =>
      fetch(`${url}/hold`, { method: "POST", body: String(i) }).then(
        async (r) => `${r.status} ${await r.text()}`,
        (e: Error) => `${e.name}: ${e.message}`,
      ),
    )
    await until(() => held() === 8, "the workers hold 8 requests", 10_000)
    hub.signal("SIGTERM")
    // the hub stopped taking requests (before the fix, its workers were gone by then: 502s, or the hub with them)
    let refused: { status: number; body: unknown } | string = ""
    await until(async () => {
      refused = await fetch(`${url}/ping`).then(
        async (r) => ({ status: r.status, body: await r.json().catch(() => null) }),
        (e: Error) => e.name,
      )
      return typeof refused === "string" || refused.status !== 200
    }, "the hub refuses new requests")
    writeFileSync(release, "")
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 8 }, (_, i) => `201 ${i}`))
    expect(refused).toMatchObject({ status: 503, body: { error: "unavailable" } })
    expect(await hub.exited).toBe(0)
    await until(() => pids.every((pid) => !alive(pid)), "both workers stopped", 20_000)
  } finally {
    if (!existsSync(release)) writeFileSync(release, "")
    await hub.kill()
    // a failed run's hub, killed, left its workers: every pid it named
    const pids = new Set(hub.lines.flatMap((l) => [...l.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]))))
    for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL")
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)
