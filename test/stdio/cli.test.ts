import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { alive, REPO, run, spawn, until } from "../support/helpers.ts"
import { buildForNode } from "../../bench/lib/node.ts"
import { findNode, nodeFlags } from "../support/runtime/node.ts"
import { rawClient, STDIO_WORKER, withBus, workerConfig } from "../support/stdio/stdio.ts"
import { formatAddress } from "../../src/stdio/index.ts"

const SLOTBUS = join(import.meta.dir, "..", "..", "bin", "slotbus.ts")
const DIR = mkdtempSync(join(tmpdir(), "stdio-cli-"))
afterAll(() => rmSync(DIR, { recursive: true, force: true }))
let configs = 0
/** A config file of its own for each test, in DIR. */
const configFile = () => join(DIR, `bus-${configs++}.json`)

async function slotbus(args: string[], stdin?: string) {
  const r = await run([process.execPath, SLOTBUS, ...args], { stdin })
  return { out: r.stdout, err: r.stderr, code: r.code }
}

test.each([
  [{ pools: [{ id: "a", command: "x", instances: 0 }] }, "pools[0].instances"],
  [{ pools: [{ id: "a", command: "x" }], limits: { max_restarts: "many" } }, "limits.max_restarts"],
])("slotbus stdio with a bad config exits 2 naming the field (%#)", async (config, field) => {
  const file = configFile()
  writeFileSync(file, JSON.stringify(config))
  const r = await slotbus(["stdio", "--config", file])
  expect(r.code).toBe(2)
  expect(r.err).toContain(field)
  expect(r.err).not.toContain("    at ")
})

test("slotbus stdio without --listen serves its own stdin: answers carry the caller's ids, and it exits when stdin ends", async () => {
  const file = configFile()
  writeFileSync(
    file,
    JSON.stringify({ pools: [{ id: "w", command: process.execPath, args: [STDIO_WORKER], instances: 2 }] }),
  )
  const lines =
    [
      { jsonrpc: "2.0", id: 1, method: "a" },
      { jsonrpc: "2.0", id: 1, method: "b", sessionId: "other" },
      { jsonrpc: "2.0", id: "s", method: "sleep", params: { ms: 100 } },
    ]
      .map((m) => JSON.stringify(m))
      .join("\n") + "\nnot json\n"
  const r = await slotbus(["stdio", "--config", file, "--quiet"], lines)
  expect(r.code).toBe(0)
  const answers = r.out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
  expect(
    answers
      .filter((m) => m.id === 1)
      .map((m) => m.result.method)
      .sort(),
  ).toEqual(["a", "b"])
  expect(answers.find((m) => m.id === "s").result.slept).toBe(100)
  expect(answers.find((m) => m.id === null).error.code).toBe(-32700)
})

// it stopped reading at the long line and exited 0, saying nothing: the client never learned why its answers ended
test("slotbus stdio without --listen answers a stdin line past max_input_buffer with -32600, answers what came before, and exits 1", async () => {
  const file = configFile()
  writeFileSync(file, JSON.stringify(workerConfig("echo", 1, { max_input_buffer: 1024 })))
  const lines = [
    JSON.stringify({ jsonrpc: "2.0", id: 1, method: "sleep", params: { ms: 200 } }),
    "x".repeat(5000),
    JSON.stringify({ jsonrpc: "2.0", id: 2, method: "after" }),
  ]
  const r = await slotbus(["stdio", "--config", file, "--quiet"], `${lines.join("\n")}\n`)
  expect(r.code).toBe(1)
  const answers = r.out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
  expect(answers).toContainEqual({
    jsonrpc: "2.0",
    id: null,
    error: {
      code: -32600,
      message: expect.stringContaining("max_input_buffer (1024 bytes)"),
      data: { disconnected: true },
    },
  })
  expect(answers.find((m) => m.id === 1)?.result.slept).toBe(200)
  expect(answers.map((m) => m.id)).not.toContain(2)
  expect(r.err.trim().split("\n")).toEqual([expect.stringContaining("longer than max_input_buffer (1024 bytes)")])
}, 30_000)

test("slotbus stdio prints a worker's stderr line with its terminal escapes escaped, prefixed with pool, instance and pid", async () => {
  const file = configFile()
  writeFileSync(file, JSON.stringify({ pools: [{ id: "w", command: process.execPath, args: [STDIO_WORKER] }] }))
  const hostile = "\x1b]0;pwned\x07\x1b[2Jcleared \u202eevil"
  const ask = { jsonrpc: "2.0", id: 1, method: "log", params: { lines: [hostile] } }
  const r = await slotbus(["stdio", "--config", file, "--quiet"], `${JSON.stringify(ask)}\n`)
  expect(r.code).toBe(0)
  expect(r.err).toMatch(/^\[w#0 \d+ info\] \\x1b\]0;pwned\\x07\\x1b\[2Jcleared \\u202eevil$/m)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach the operator's terminal
  expect(r.err).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/)
}, 30_000)

test("slotbus stdio --listen http: serves MCP over Streamable HTTP to the SDK client, and stops on SIGTERM", async () => {
  const everything = join(import.meta.dir, "..", "..", "node_modules", "@modelcontextprotocol", "server-everything")
  const file = configFile()
  const pool = { id: "everything", command: process.execPath, args: [join(everything, "dist", "index.js"), "stdio"] }
  writeFileSync(file, JSON.stringify({ pools: [{ ...pool, instances: 2, initialize: "replay" }] }))
  const bus = spawn([process.execPath, SLOTBUS, "stdio", "--config", file, "--listen", "http:127.0.0.1:0"])
  try {
    await until(() => /listening on http:\/\/127\.0\.0\.1:\d+\/mcp /.test(bus.stderr), "the bus listens", 30_000)
    const url = /listening on (http:\S+)/.exec(bus.stderr)![1]!
    const client = new Client({ name: "slotbus-test", version: "1" })
    await client.connect(new StreamableHTTPClientTransport(new URL(url)))
    const r = (await client.callTool({ name: "echo", arguments: { message: "cli" } })) as {
      content: { text: string }[]
    }
    expect(r.content[0]!.text).toBe("Echo: cli")
    const foreign = await fetch(url, { method: "POST", headers: { origin: "https://evil.example" }, body: "{}" })
    expect(foreign.status).toBe(403)
    await client.close()
    bus.signal("SIGTERM")
    expect(await bus.exited).toBe(0)
  } finally {
    await bus.kill()
  }
}, 60_000)

// it printed the usage on stderr and exited 2 (with an address given: 0, but on stderr still)
test("slotbus stdio connect --help prints the usage on stdout and exits 0; without an address it is exit 2", async () => {
  for (const args of [["--help"], ["unix:/nowhere", "--help"]]) {
    const r = await run([process.execPath, SLOTBUS, "stdio", "connect", ...args])
    expect([r.code, r.stderr]).toEqual([0, ""])
    expect(r.stdout).toContain("slotbus stdio connect")
  }
  const bare = await run([process.execPath, SLOTBUS, "stdio", "connect"])
  expect([bare.code, bare.stdout]).toEqual([2, ""])
  expect(bare.stderr).toContain("slotbus stdio connect")
})

// each of these exited 0, as if the client had been served: the bus marked its refusal like any invalid request's answer
describe("slotbus stdio connect exits 1 when the bus refuses it or closes first", () => {
  const sock = () => join(DIR, `bus-${configs++}.sock`)
  const connect = (address: string, stdin: string, env: Record<string, string> = {}) =>
    run([process.execPath, SLOTBUS, "stdio", "connect", address], { stdin, env: { ...process.env, ...env } })
  const ask = (id: number, method = "hi") => `${JSON.stringify({ jsonrpc: "2.0", id, method })}\n`
  /** What connect printed: the refusal on stdout as the bus sent it, and one line on stderr. */
  const refused = (r: { code: number; stdout: string; stderr: string }, why: string) => {
    expect(r.code).toBe(1)
    const last = JSON.parse(r.stdout.trim().split("\n").at(-1)!)
    expect(last).toEqual({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32600, message: expect.stringContaining(why), data: { disconnected: true } },
    })
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringContaining(`refused this client: ${last.error.message}`)])
  }

  // Ten times: the bus closed a refused connection outright, and a connect that had not yet seen its socket open
  // (about one in three) failed to connect, its refusal unread; the bus half-closes now and waits for the client.
  test("past maxClients, ten times over", async () => {
    await withBus(workerConfig(), async (bus) => {
      const at = `unix:${sock()}`
      await bus.listen(at, { maxClients: 1 })
      const first = await rawClient(at)
      try {
        await until(() => bus.clientCount === 1, "the first client attached")
        for (let i = 0; i < 10; i++) refused(await connect(at, ask(1)), "maxClients")
      } finally {
        first.close()
      }
    })
  })

  test("a wrong token over tcp:", async () => {
    await withBus(workerConfig(), async (bus) => {
      const l = await bus.listen("tcp:127.0.0.1:0")
      refused(
        await connect(formatAddress(l.address), ask(1), { SLOTBUS_STDIO_TOKEN: "not-the-token" }),
        "authentication failed",
      )
    })
  })

  test("a line past max_input_buffer; an invalid request before it is only answered", async () => {
    await withBus(workerConfig("echo", 1, { max_input_buffer: 1024 }), async (bus) => {
      const at = `unix:${sock()}`
      await bus.listen(at)
      const r = await connect(at, `[]\n${"x".repeat(5000)}\n${ask(2)}`)
      refused(r, "max_input_buffer")
      const answers = r.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
      // [] is answered and the client kept: only the refusal says disconnected
      expect(answers[0]).toEqual({ jsonrpc: "2.0", id: null, error: { code: -32600, message: expect.any(String) } })
    })
  })

  test("the bus stopping before connect's stdin ended; stdin ending first is exit 0", async () => {
    await withBus(workerConfig(), async (bus) => {
      const at = `unix:${sock()}`
      await bus.listen(at)
      expect((await connect(at, ask(1))).code).toBe(0)
      const held = spawn([process.execPath, SLOTBUS, "stdio", "connect", at], { stdin: "pipe" })
      try {
        held.write(ask(2))
        await held.line(0)
        await bus.stop()
        expect(await held.exited).toBe(1)
        expect(held.stderr.trim().split("\n")).toEqual([
          `slotbus stdio connect: the bus at ${at} closed the connection (exit 1)`,
        ])
      } finally {
        await held.kill()
      }
    })
  })
})

// Bun printed the EPIPE with its stack on stderr; Node died of the unhandled 'error' event, exit 1
// biome-ignore lint/suspicious/noTemplateCurlyInString: bash's ${PIPESTATUS[0]}, the exit code of the command before the pipe
const HEAD_1 = '"$@" | head -1; exit "${PIPESTATUS[0]}"'

describe("slotbus stdio whose stdout's reader went away (| head -1) ends quietly, exit 0", () => {
  const node = findNode()
  let built: { entries: string[]; remove(): void } | null = null
  beforeAll(() => {
    if (node) built = buildForNode([join(REPO, "src", "cli", "entry.ts")])
  })
  afterAll(() => built?.remove())
  const asks = Array.from({ length: 20_000 }, (_, id) => JSON.stringify({ jsonrpc: "2.0", id, method: "hi" }))
  test.each([
    ["Bun", () => [process.execPath, SLOTBUS]],
    ["Node", () => (node && built ? [node, ...nodeFlags(node), "--no-warnings", built.entries[0]!] : null)],
  ])("connect, under %s", async (_runtime, command) => {
    const argv = command()
    if (!argv) return console.log("skipped: no Node >= 26.1 here")
    await withBus(workerConfig(), async (bus) => {
      const at = `unix:${join(DIR, `bus-${configs++}.sock`)}`
      await bus.listen(at)
      // ~1 MB of answers: far past a pipe's buffer, so connect writes on after head left
      const r = await run(["bash", "-c", HEAD_1, "bash", ...argv, "stdio", "connect", at], {
        stdin: `${asks.join("\n")}\n`,
        timeoutMs: 60_000,
      })
      expect(JSON.parse(r.stdout)).toMatchObject({ jsonrpc: "2.0", id: 0 })
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
      await until(() => bus.clientCount === 0, "the bus let the client go")
    })
  })

  test("serving its own stdin, its workers stopped", async () => {
    const file = configFile()
    writeFileSync(file, JSON.stringify(workerConfig()))
    const r = await run(["bash", "-c", HEAD_1, "bash", process.execPath, SLOTBUS, "stdio"].concat(["--config", file]), {
      stdin: `${asks.join("\n")}\n`,
      timeoutMs: 60_000,
    })
    expect(JSON.parse(r.stdout)).toMatchObject({ jsonrpc: "2.0", id: 0 })
    expect(r.stderr.split("\n").filter((l) => l && !l.startsWith("[slotbus stdio] ") && !l.startsWith("[w#"))).toEqual(
      [],
    )
    expect(r.code).toBe(0)
    for (const [, pid] of r.stderr.matchAll(/started, pid (\d+)/g)) expect(alive(Number(pid))).toBe(false)
  })
})

// a port in use or a token file in a missing directory printed a stack trace and exited 1
describe("slotbus stdio --listen that cannot be taken: one line, exit 2, its workers stopped", () => {
  const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } })
  afterAll(() => taken.stop(true))
  test.each([
    ["a directory", () => ["--listen", `unix:${DIR}`], "is not a socket but a directory"],
    ["a missing directory", () => ["--listen", "unix:/nonexistent-dir/bus.sock"], "its directory does not exist"],
    ["a port in use", () => ["--listen", `tcp:127.0.0.1:${taken.port}`], "the address is in use"],
    ["an http port in use", () => ["--listen", `http:127.0.0.1:${taken.port}`], "the address is in use"],
    [
      "a token file in a missing directory",
      () => ["--listen", "tcp:0", "--token-file", "/nonexistent-dir/t"],
      "token file",
    ],
    [
      "an http token file in a missing directory",
      () => ["--listen", "http:0", "--http-token-file", "/nonexistent-dir/t"],
      "token file",
    ],
  ])("%s", async (_what, args, why) => {
    const file = configFile()
    writeFileSync(file, JSON.stringify(workerConfig()))
    const r = await slotbus(["stdio", "--config", file, ...args()])
    expect(r.code).toBe(2)
    const lines = r.err.trim().split("\n")
    expect(lines.at(-1)).toStartWith("slotbus stdio: ")
    expect(lines.at(-1)).toContain(why)
    expect(lines.filter((l) => !l.startsWith("[slotbus stdio] ") && !l.startsWith("[w#"))).toHaveLength(1)
    for (const [, pid] of r.err.matchAll(/started, pid (\d+)/g)) expect(alive(Number(pid))).toBe(false)
  })

  // it started the workers, then found the address bad
  test("a bad address is refused before any worker starts", async () => {
    const file = configFile()
    writeFileSync(file, JSON.stringify(workerConfig()))
    for (const bad of ["foo", "http:foo"]) {
      const r = await slotbus([
        "stdio",
        "--config",
        file,
        "--listen",
        `unix:${join(DIR, "fine.sock")}`,
        "--listen",
        bad,
      ])
      expect(r.code).toBe(2)
      expect(r.err.trim().split("\n")).toEqual([expect.stringContaining(`"${bad}" is not an`)])
    }
  })
})
