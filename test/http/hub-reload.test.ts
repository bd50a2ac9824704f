// `slotbus hub --spawn` under wrk: SIGHUP (systemctl reload) twice within 10 s replaces every worker surge-first, and
// the clients see nothing of it: no error, no non-2xx answer, on a non-idempotent route (POST, never retried). The hub
// sends a retired worker nothing more and SIGTERMs it once it runs nothing, so this holds for workers that leave on
// SIGTERM with app.close() and for those with no SIGTERM handler at all (hubWorker's README example).
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { alive, freePort, run, spawn, until } from "../support/helpers.ts"
import { heldHub } from "../support/http/held-hub.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const ROOT = join(import.meta.dir, "..", "..")
const wrkSkip = toolSkipReason("wrk")
sayWhySkipped("SIGHUP to slotbus hub --spawn under wrk", wrkSkip)

// The http tests' worker, and two written here (POST /items too, "ready <pid>" once joined) that leave on SIGTERM otherwise.
const WORKERS = {
  "app.close() on SIGTERM": "http-worker",
  "no SIGTERM handler": "bare-worker",
  "process.once(SIGTERM, app.close) set before run()": "once-worker",
} as const

function workerCommand(dir: string, url: string, kind: (typeof WORKERS)[keyof typeof WORKERS]): string {
  if (kind === "http-worker")
    return `${process.execPath} ${join(ROOT, "test", "support", "http", "http-worker.ts")} ${url} shop`
  const file = join(dir, `${kind}.ts`)
  writeFileSync(
    file,
    `import { hubWorker } from ${JSON.stringify(join(ROOT, "src", "http", "index.ts"))}
const app = hubWorker(process.env.SLOTBUS_HUB_URL!, "shop")
app.post("/items", async (req) => Response.json({ created: await req.json() }, { status: 201 }))
${kind === "once-worker" ? `process.once("SIGTERM", () => void app.close())` : ""}
await app.run()
console.log(\`ready \${process.pid}\`)
`,
  )
  return `${process.execPath} ${file}`
}

test.skipIf(wrkSkip !== null).each(Object.entries(WORKERS))(
  "two SIGHUPs within 10 s under wrk (16 connections, POST), workers with %s: every one replaced, 0 errors, 0 non-2xx answers",
  async (_, kind) => {
    const dir = mkdtempSync(join(tmpdir(), "hub-reload-"))
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const script = join(dir, "post.lua")
    writeFileSync(
      script,
      `wrk.method = "POST"\nwrk.body = '{"sku":"a-1"}'\nwrk.headers["content-type"] = "application/json"\n`,
    )
    const worker = workerCommand(dir, url, kind)
    const hub = spawn([
      process.execPath,
      join(ROOT, "bin", "slotbus.ts"),
      "hub",
      "--port",
      String(port),
      "--token-file",
      join(dir, "token"),
      "--spawn",
      worker,
      "--instances",
      "2",
    ])
    // each worker line comes prefixed with its pool (the script's name), instance and pid
    const ready = () => hub.lines.flatMap((l) => /^\[[\w-]+#\d pid (\d+)\] ready \1$/.exec(l)?.[1] ?? []).map(Number)
    const reloaded = () => hub.lines.filter((l) => l.startsWith("slotbus hub: reloaded 2 workers")).length
    try {
      await until(() => ready().length === 2, "two workers ready", 20_000)
      const first = ready()
      const load = run(["wrk", "-t1", "-c16", "-d8s", "--timeout", "5s", "-s", script, `${url}/items`], {
        timeoutMs: 30_000,
      })
      await Bun.sleep(1000)
      const started = performance.now()
      hub.signal("SIGHUP")
      await until(() => reloaded() === 1, "the first reload", 10_000)
      hub.signal("SIGHUP")
      await until(() => reloaded() === 2, "the second reload", 10_000)
      const reloadsMs = performance.now() - started
      const wrk = await load
      console.log(`${kind}: two reloads in ${reloadsMs.toFixed(0)} ms under wrk:\n${wrk.stdout}`)
      expect(wrk.code).toBe(0)
      expect(wrk.stdout).toMatch(/\d+ requests in/)
      expect(wrk.stdout).not.toMatch(/Socket errors/)
      expect(wrk.stdout).not.toMatch(/Non-2xx/)
      expect(hub.lines.join("\n")).not.toMatch(/reload failed|restarting in/)
      const all = ready()
      expect(all.length).toBe(6)
      for (const pid of first) await until(() => !alive(pid), `first worker ${pid} gone`, 10_000)
      hub.signal("SIGTERM")
      expect(await hub.exited).toBe(0)
      await until(() => all.every((pid) => !alive(pid)), "every worker stopped", 20_000)
    } finally {
      await hub.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  },
  90_000,
)

// A worker that joins with a fixed instance name: its successor registers under the same name, which took the old
// process's place at once and cut off what it ran (502); the old one now drains, and the reload waits for it before
// SIGTERMing it.
test("a SIGHUP reload of a worker with a fixed instance name: the requests the old process holds are answered", async () => {
  const h = await heldHub({ instance: "fixed" })
  const { hub, ready, held, hold } = h
  try {
    await until(() => ready().length === 1, "the worker ready", 20_000)
    const [old] = ready()
    const answers = Array.from({ length: 4 }, (_, i) => hold(i))
    await until(() => held() === 4, "the worker holds 4 requests", 10_000)
    hub.signal("SIGHUP")
    // its successor registered under the same instance name, in its place
    await until(
      () => hub.lines.some((l) => l.includes(`restarted: pid ${old} replaced by pid`)),
      "the successor",
      20_000,
    )
    // past the reload's dwell (minReadyMs, 1.5 s), when it retires the old process: it must still hold them
    await Promise.race([Promise.all(answers), Bun.sleep(3000)])
    h.release()
    expect(await Promise.all(answers)).toEqual(["201 0", "201 1", "201 2", "201 3"])
    await until(() => hub.lines.some((l) => l.startsWith("slotbus hub: reloaded 1 workers")), "the reload", 20_000)
    await until(() => !alive(old!), "the old worker gone", 10_000)
    expect(await hold(4)).toBe("201 4") // its successor serves
    hub.signal("SIGTERM")
    expect(await hub.exited).toBe(0)
  } finally {
    await h.end()
  }
}, 60_000)
