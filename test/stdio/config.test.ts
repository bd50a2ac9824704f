import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DEFAULT_LIMITS, StdioBus, StdioConfigError, loadConfig } from "../../src/stdio/index.ts"

const pool = { id: "p", command: "bun", args: ["w.ts"], instances: 2 }
const DIR = mkdtempSync(join(tmpdir(), "stdio-config-"))
afterAll(() => rmSync(DIR, { recursive: true, force: true }))

describe("stdio bus configuration", () => {
  test("an object in stdio_bus's form is taken as is, with every missing limit set to its documented default", () => {
    const c = loadConfig({ pools: [pool], limits: { max_restarts: 3 } })
    expect(c.pools).toEqual([
      { ...pool, cwd: undefined, env: undefined, cancel: "mcp", initialize: "none", ready: "ping" },
    ])
    expect(c.limits).toEqual({ ...DEFAULT_LIMITS, max_restarts: 3 })
    expect(DEFAULT_LIMITS).toEqual({
      max_input_buffer: 1048576,
      max_output_queue: 4194304,
      max_restarts: 5,
      restart_window_sec: 60,
      drain_timeout_sec: 30,
      backpressure_timeout_sec: 60,
    })
  })

  test("args and instances may be left out (no arguments, one instance)", () => {
    expect(loadConfig({ pools: [{ id: "a", command: "cat" }] }).pools[0]).toMatchObject({ args: [], instances: 1 })
  })

  test.each(["mcp", "lsp", "none"] as const)('cancel "%s" is taken as the pool\'s cancel protocol', (cancel) => {
    expect(loadConfig({ pools: [{ ...pool, cancel }] }).pools[0]!.cancel).toBe(cancel)
  })

  test.each(["replay", "none"] as const)('initialize "%s" is taken as the pool\'s handshake setting', (initialize) => {
    expect(loadConfig({ pools: [{ ...pool, initialize }] }).pools[0]!.initialize).toBe(initialize)
  })

  test("a file path is read and parsed like the object", () => {
    const file = join(DIR, "bus.json")
    writeFileSync(file, JSON.stringify({ pools: [pool], limits: { drain_timeout_sec: 1.5 } }))
    expect(loadConfig(file).limits.drain_timeout_sec).toBe(1.5)
    expect(StdioBus.fromConfig(file).state).toBe("created")
  })

  test.each([
    ["(file)", "/nonexistent/bus.json", "cannot be read"],
    ["(root)", [], "must be an object"],
    ["pools", { pools: [] }, "non-empty array"],
    ["pools[0]", { pools: [7] }, "must be an object"],
    ["pools[0].id", { pools: [{ ...pool, id: "" }] }, "non-empty string"],
    ["pools[1].id", { pools: [pool, pool] }, "unique"],
    ["pools[0].command", { pools: [{ ...pool, command: 5 }] }, "non-empty string"],
    ["pools[0].args", { pools: [{ ...pool, args: "w.ts" }] }, "array of strings"],
    ["pools[0].instances", { pools: [{ ...pool, instances: 0 }] }, "must be an integer in 1..1024, got 0"],
    ["pools[0].instances", { pools: [{ ...pool, instances: 1.5 }] }, "must be an integer in 1..1024, got 1.5"],
    ["pools[0].cancel", { pools: [{ ...pool, cancel: "grpc" }] }, 'one of "mcp", "lsp", "none"'],
    ["pools[0].cancel", { pools: [{ ...pool, cancel: true }] }, 'one of "mcp", "lsp", "none"'],
    ["pools[0].initialize", { pools: [{ ...pool, initialize: true }] }, 'must be "replay" or "none"'],
    ["pools[0].comand", { pools: [{ ...pool, comand: "x" }] }, "not a known setting"],
    ["limits", { pools: [pool], limits: 3 }, "must be an object"],
    ["limits.max_restarts", { pools: [pool], limits: { max_restarts: -1 } }, "must be an integer ≥ 0, got -1"],
    ["limits.max_input_buffer", { pools: [pool], limits: { max_input_buffer: 0 } }, "must be an integer ≥ 1, got 0"],
    [
      "limits.drain_timeout_sec",
      { pools: [pool], limits: { drain_timeout_sec: "5" } },
      'must be a finite number ≥ 0, got "5"',
    ],
    ["limits.max_queue", { pools: [pool], limits: { max_queue: 5 } }, "not a known limit"],
    ["extra", { pools: [pool], extra: 1 }, "not a known setting"],
  ])("%s is refused with its name and the reason (%#)", (field, input, reason) => {
    let error: unknown
    try {
      loadConfig(input as never)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(StdioConfigError)
    expect((error as StdioConfigError).field).toBe(field)
    expect((error as StdioConfigError).reason).toContain(reason)
    expect((error as Error).message).toContain(field)
  })

  test("a file that is not JSON names the file and the parse problem", () => {
    const file = join(DIR, "bad.json")
    writeFileSync(file, "{ pools: ")
    expect(() => loadConfig(file)).toThrow(/bad\.json is not valid JSON/)
  })
})
