// A nats-server of the test's own on 127.0.0.1, for the tests of workers over NATS (docs/PROTOCOL.md §10).
import { spawnSync } from "node:child_process"
import { afterAll, afterEach, beforeAll } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawn, until, type Child } from "./helpers.ts"

/** Why the NATS tests cannot run here, or null. Under .ci/run (SLOTBUS_REQUIRE_TOOLS=1) they run, and fail. */
export function natsSkipReason(): string | null {
  if (process.env.SLOTBUS_REQUIRE_TOOLS === "1") return null
  return spawnSync("nats-server", ["--version"]).status === 0
    ? null
    : "no nats-server here (apt-get install -y nats-server)"
}

/**
 * Starts nats-server on a port of this test process's own and resolves once it takes connections. With
 * `jetstream`, it runs JetStream (-js) with a store in a temporary folder, removed when the server exits.
 */
export async function startNats(opts: { jetstream?: boolean } = {}): Promise<{ url: string; server: Child }> {
  const port = 20000 + ((process.pid * 7 + Math.floor(Math.random() * 1000)) % 20000)
  const js: string[] = []
  if (opts.jetstream) {
    const dir = mkdtempSync(join(tmpdir(), "slotbus-nats-js-"))
    js.push("-js", "-sd", dir)
  }
  const server = spawn(["nats-server", "-a", "127.0.0.1", "-p", String(port), ...js])
  const store = js[2]
  if (store) void server.exited.then(() => rmSync(store, { recursive: true, force: true }))
  await until(
    () =>
      Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
        (s) => (s.end(), true),
        () => false,
      ),
    "nats-server takes connections",
    10_000,
  )
  return { url: `nats://127.0.0.1:${port}`, server }
}

/**
 * For a test file: a nats-server of its own (started before its tests unless `skip`, killed after them) at
 * `url`, and `cleanup`, what each test started, undone after it in reverse order.
 */
export function natsPerFile(skip: string | null): { readonly url: string; cleanup: (() => Promise<void>)[] } {
  const ctx = { url: "", cleanup: [] as (() => Promise<void>)[] }
  let server: Child | undefined
  beforeAll(async () => {
    if (!skip) ({ url: ctx.url, server } = await startNats())
  })
  afterAll(async () => {
    await server?.kill()
  })
  afterEach(async () => {
    for (const f of ctx.cleanup.splice(0).reverse()) await f()
  })
  return ctx
}
