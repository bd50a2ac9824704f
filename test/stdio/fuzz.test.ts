// Property tests: odd lines from a socket client, odd request options, odd configurations. After every case the
// bus still serves, and nothing is left behind: no pending entry, no in-flight count, no client, no timer, no fd.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import fc from "fast-check"
import { StdioBus, StdioConfigError, loadConfig } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { rawClient, workerConfig } from "../support/stdio/stdio.ts"

const fds = () => readdirSync("/proc/self/fd").length
let bus: StdioBus
let path: string
let fds0 = 0

/** The bus has nothing on its books and no timer running (the sweeper is private: peeked at, read only). */
async function quiet(): Promise<void> {
  const books = () => {
    const s = bus.stats()
    const inst = s.pools.flatMap((p) => p.instances)
    return {
      inFlight: inst.reduce((n, i) => n + i.inFlight, 0),
      stuck: inst.reduce((n, i) => n + i.stuck, 0),
      queued: inst.reduce((n, i) => n + i.queuedBytes, 0),
      clients: s.clientCount,
      workers: s.workerCount,
    }
  }
  await until(
    () => {
      const b = books()
      return b.inFlight === 0 && b.stuck === 0 && b.queued === 0 && b.clients === 0 && b.workers === 2
    },
    `a quiet bus (${JSON.stringify(books())})`,
    15_000,
  )
  await until(() => (bus as unknown as { books: { sweeper: unknown } }).books.sweeper === null, "the sweeper stopped")
  expect(await bus.request("echo", { still: "serving" })).toMatchObject({ echo: { still: "serving" } })
}

beforeAll(async () => {
  bus = StdioBus.fromConfig(workerConfig("echo", 2, { max_input_buffer: 64 * 1024, max_restarts: 1000 }))
  await bus.start()
  path = join(tmpdir(), `slotbus-fuzz-${process.pid}.sock`)
  await bus.listen(`unix:${path}`, { lineTimeoutMs: 300 })
  await bus.request("echo") // the workers are up
  fds0 = fds()
})

afterAll(async () => {
  await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
})

const SAFE_METHODS = [
  "echo",
  "who",
  "notify",
  "fail",
  "garbage",
  "stray",
  "sleep",
  "ignore",
  "big",
  "ask",
  "f/x",
  "",
  "\u0000",
  "constructor",
  "__proto__",
]
const id = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.constantFrom("12345678901234567890", "1e400", "-0", "1.50", "sb-1", '"sb-1"').map((raw) => ({ raw })),
)
const message = fc.record(
  {
    jsonrpc: fc.constantFrom("2.0", "1.0", undefined),
    id: fc.option(id, { nil: undefined }),
    method: fc.option(fc.constantFrom(...SAFE_METHODS), { nil: undefined }),
    params: fc.option(
      fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.record({ ms: fc.integer({ min: 0, max: 30 }), bytes: fc.integer({ min: 0, max: 100_000 }) }),
      ),
      { nil: undefined },
    ),
    result: fc.option(fc.jsonValue({ maxDepth: 1 }), { nil: undefined }),
    sessionId: fc.option(fc.oneof(fc.string(), fc.constantFrom("\u0001client-1", "\u0001client-2", "0\u0000x")), {
      nil: undefined,
    }),
    pool: fc.option(fc.constantFrom("w", "nope", "toString", "__proto__"), { nil: undefined }),
  },
  { requiredKeys: [] },
)
const toLine = (m: Record<string, unknown>) => {
  const { id: raw, ...rest } = m
  const text = JSON.stringify(rest)
  if (raw === undefined) return text
  const idText =
    typeof raw === "object" && raw !== null && "raw" in raw ? String((raw as { raw: string }).raw) : JSON.stringify(raw)
  return text === "{}" ? `{"id":${idText}}` : `{"id":${idText},${text.slice(1)}`
}
const line = fc.oneof(
  { weight: 5, arbitrary: message.map(toLine) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "[]",
      '[{"id":1,"method":"x"}]',
      "null",
      "1",
      '"x"',
      "{",
      "{}",
      "\r",
      '{"id":1e999999,"method":"echo"}',
      "x".repeat(70_000),
    ),
  },
)

describe("a client the bus cuts off", () => {
  // A case the property below found on a loaded machine (it then hung the property past its 60 s): the "ignore"
  // request was taken after its client had been cut off for the line over max_input_buffer, and stayed in flight
  // for good. It fails on the old code every time, loaded or not.
  test("the lines it sent before are not taken after: no request of it stays on the books", async () => {
    const lines = [
      "\u{a963}\u{19c6b}",
      JSON.stringify({ jsonrpc: "1.0", method: "notify", result: true, sessionId: ".", pool: "w" }),
      JSON.stringify({
        jsonrpc: "2.0",
        method: "garbage",
        params: { ms: 13, bytes: 82370 },
        sessionId: "y",
        pool: "__proto__",
      }),
      JSON.stringify({ id: 1, method: "ignore", sessionId: "n*" }),
      "x".repeat(70_000),
    ]
    const text = `${lines.join("\n")}\n`
    for (let i = 0; i < 30; i++) {
      const c = await rawClient(`unix:${path}`)
      for (let at = 0; at < text.length; at += 2804) c.write(text.slice(at, at + 2804))
      await c.closed
      await quiet()
    }
  }, 120_000)
})

describe("stdio bus properties", () => {
  test("any lines from a socket client, cut anywhere, leave the bus serving with nothing on its books once the client goes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 4096 }),
        fc.boolean(),
        async (lines, cut, complete) => {
          const c = await rawClient(`unix:${path}`)
          try {
            const text = lines.join("\n") + (complete ? "\n" : "")
            for (let at = 0; at < text.length; at += cut) c.write(text.slice(at, at + cut))
            await Bun.sleep(5)
          } finally {
            c.close()
            await c.closed
          }
          await quiet()
        },
      ),
      { numRuns: 40 },
    )
    expect(fds()).toBeLessThanOrEqual(fds0 + 2)
  }, 60_000)

  test("request() with odd options either settles with a typed error or answers; aborts and timeouts leave nothing behind", async () => {
    const options = fc.record({
      timeoutMs: fc.option(
        fc.oneof(fc.integer({ min: -5, max: 50 }), fc.constantFrom(Number.NaN, Infinity, 2 ** 31, 1e300, -Infinity, 0)),
        { nil: undefined },
      ),
      sessionId: fc.option(fc.oneof(fc.string(), fc.constantFrom("\u0001client-1", "")), { nil: undefined }),
      pool: fc.option(fc.constantFrom("w", "nope", "toString", "constructor"), { nil: undefined }),
      abortAfterMs: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
    })
    const call = fc.record({
      method: fc.constantFrom("echo", "sleep", "ignore", "fail", "", "garbage"),
      params: fc.record({ ms: fc.integer({ min: 0, max: 40 }) }),
      options,
    })
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 8 }), async (calls) => {
        const outcomes = calls.map(({ method, params, options: { abortAfterMs, ...o } }) => {
          const ac = new AbortController()
          if (abortAfterMs !== undefined) setTimeout(() => ac.abort(new Error("fuzz abort")), abortAfterMs)
          // "ignore" is never answered: it must be given up (timeout or abort) or the bus would rightly wait for it
          const opts = method === "ignore" && abortAfterMs === undefined ? { ...o, timeoutMs: 10 } : o
          try {
            return bus.request(method, params, { ...opts, signal: ac.signal }).then(
              () => "ok",
              (e: Error) => (e.name === "Error" ? e.message : e.name),
            )
          } catch (e) {
            return Promise.resolve((e as Error).name)
          }
        })
        for (const o of await Promise.all(outcomes))
          expect(["ok", "fuzz abort", "TimeoutError", "JsonRpcError", "TypeError", "RangeError"]).toContain(o)
        await quiet()
      }),
      { numRuns: 40 },
    )
    for (const s of ["", "\u0001client-1"]) bus.endSession(s)
  }, 60_000)

  test("loadConfig takes a config or refuses it with StdioConfigError, never anything else", () => {
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 1 }),
      fc.constantFrom(1e7, 2 ** 31, -1, 0, 0.5, 1e300, Number.MAX_SAFE_INTEGER + 2),
    )
    const limits = fc.dictionary(
      fc.constantFrom(
        "max_input_buffer",
        "max_output_queue",
        "max_restarts",
        "restart_window_sec",
        "drain_timeout_sec",
        "backpressure_timeout_sec",
        "toString",
        "constructor",
        "valueOf",
        "__proto__",
        "x",
      ),
      value,
    )
    const pool = fc.record(
      {
        id: fc.oneof(fc.string(), value),
        command: fc.oneof(fc.string(), value),
        args: fc.oneof(fc.array(fc.string()), value),
        instances: value,
        cwd: value,
        env: value,
      },
      { requiredKeys: [] },
    )
    const config = fc.oneof(
      fc.record(
        { pools: fc.oneof(fc.array(pool, { maxLength: 3 }), value), limits: fc.oneof(limits, value) },
        { requiredKeys: [] },
      ),
      value,
    )
    fc.assert(
      fc.property(config, (c) => {
        try {
          const loaded = loadConfig(c as never)
          for (const [k, v] of Object.entries(loaded.limits))
            expect(Number.isFinite(v) && v >= 0).toBe(true), expect(Object.hasOwn(loaded.limits, k)).toBe(true)
        } catch (e) {
          expect(e).toBeInstanceOf(StdioConfigError)
        }
      }),
      { numRuns: 1000 },
    )
  })
})
