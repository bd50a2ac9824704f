// kit/checks/value-check.ts: the one name check and the one number check (issue 46). Before, the name rule was written
// six times and numbers were checked seven ways, each with its own message ("must match [A-Za-z0-9._-]{1,64}",
// "is invalid: use 1-64 of", "must be an integer in 0..N", "a whole number from", "≥", "…"). Now every room says
// `<where>: <what> must be …, got <value>`, keeping its limits and its error class.
import { describe, expect, test } from "bun:test"
import { SlotBus, SlotWorker, Supervisor, superviseWorkers } from "../../../src/index.ts"
import { createHub, hubWorker } from "../../../src/http/index.ts"
import { Topic } from "../../../src/events/index.ts"
import { Contest, ContestOpenError } from "../../../src/leases/index.ts"
import { loadConfig, StdioConfigError } from "../../../src/stdio/index.ts"
import { serveStatus } from "../../../src/status/index.ts"
import { Backoff, checkName, checkNumber, nameProblem } from "../../../src/kit/index.ts"
import { busName, rejection } from "../../support/helpers.ts"

const NAME_SHAPE = /^([A-Za-z. ]+: )?[a-z ]+ must be 1-\d+ characters( of \[[^\]]+\])?, got .+$/
const NUMBER_SHAPE =
  /^([A-Za-z. ]+: )?[\w.]+ must be (an integer|a (finite )?number|a power of two) (in -?[\d.e+]+\.\.[\d.e+]+|≥ -?[\d.e+]+|> 0(, ≤ [\d.e+]+)?)( \([^)]*\))?( or 0)?( or Infinity)?, got .+$/

describe("checkName", () => {
  test.each([
    ["a", { what: "bus name" }],
    ["A-z_0.9", { what: "bus name" }],
    ["x".repeat(64), { what: "bus name" }],
    ["x".repeat(40), { what: "worker name", max: 40, chars: "A-Za-z0-9_-" }],
    ["any thing\n", { what: "host", max: 255, chars: null }],
  ])("%j is a name by %j", (name, rule) => expect(checkName(name, rule)).toBe(name))

  test.each([
    ["", { what: "bus name" }, 'bus name must be 1-64 characters of [A-Za-z0-9._-], got ""'],
    [
      "x".repeat(65),
      { what: "bus name" },
      `bus name must be 1-64 characters of [A-Za-z0-9._-], got "${"x".repeat(65)}"`,
    ],
    [
      "a b",
      { what: "topic name", where: "Topic.open" },
      'Topic.open: topic name must be 1-64 characters of [A-Za-z0-9._-], got "a b"',
    ],
    ["a\0b", { what: "bus name" }, 'bus name must be 1-64 characters of [A-Za-z0-9._-], got "a\\u0000b"'],
    [
      "a.b",
      { what: "worker name", max: 40, chars: "A-Za-z0-9_-" },
      'worker name must be 1-40 characters of [A-Za-z0-9_-], got "a.b"',
    ],
    ["", { what: "host", max: 255, chars: null }, 'host must be 1-255 characters, got ""'],
    [42, { what: "bus name" }, "bus name must be 1-64 characters of [A-Za-z0-9._-], got 42"],
    [undefined, { what: "bus name" }, "bus name must be 1-64 characters of [A-Za-z0-9._-], got undefined"],
  ])("%j is refused with a TypeError: %s", (name, rule, message) => {
    expect(() => checkName(name, rule)).toThrow(TypeError)
    expect(() => checkName(name, rule)).toThrow(message)
    expect(nameProblem(name, rule)?.message).toBe(message)
  })

  test("a room's own error class comes from `error`, with the same message", () => {
    const e = (() => {
      try {
        checkName("no spaces", { what: "contest name", error: (p) => new ContestOpenError(p.message, "invalid-name") })
      } catch (e) {
        return e
      }
    })()
    expect(e).toBeInstanceOf(ContestOpenError)
    expect((e as ContestOpenError).reason).toBe("invalid-name")
    expect((e as Error).message).toMatch(NAME_SHAPE)
  })
})

describe("checkNumber", () => {
  test("undefined is the default; a number in range is itself", () => {
    expect(checkNumber(undefined, { what: "n", dflt: 7 })).toBe(7)
    expect(checkNumber(0, { what: "n" })).toBe(0)
    expect(checkNumber(1.5, { what: "n", integer: false })).toBe(1.5)
    expect(checkNumber(Infinity, { what: "n", max: 10, infinite: true })).toBe(Infinity)
    expect(checkNumber(0, { what: "w", min: 4096, max: 2 ** 30, powerOfTwo: true, zero: true })).toBe(0)
    expect(checkNumber(8192, { what: "w", min: 4096, max: 2 ** 30, powerOfTwo: true })).toBe(8192)
  })

  test.each([
    [-1, { what: "slots", min: 1, max: 4096 }, RangeError, "slots must be an integer in 1..4096, got -1"],
    [1.5, { what: "n", where: "resize" }, RangeError, "resize: n must be an integer ≥ 0, got 1.5"],
    [
      Number.NaN,
      { what: "timeoutMs", max: Infinity, integer: false },
      RangeError,
      "timeoutMs must be a number ≥ 0, got NaN",
    ],
    [
      Infinity,
      { what: "initialMs", max: Number.MAX_VALUE, integer: false },
      RangeError,
      "initialMs must be a finite number ≥ 0, got Infinity",
    ],
    [
      0,
      { what: "ttlMs", min: Number.MIN_VALUE, max: 100, integer: false, infinite: true },
      RangeError,
      "ttlMs must be a number > 0, ≤ 100 or Infinity, got 0",
    ],
    [
      6000,
      { what: "w", min: 4096, max: 8192, powerOfTwo: true, zero: true, note: "the arena" },
      RangeError,
      "w must be a power of two in 4096..8192 (the arena) or 0, got 6000",
    ],
    ["5", { what: "timeoutMs" }, TypeError, 'timeoutMs must be an integer ≥ 0, got "5"'],
    [null, { what: "timeoutMs", dflt: 1 }, TypeError, "timeoutMs must be an integer ≥ 0, got null"],
    [undefined, { what: "ttlMs" }, TypeError, "ttlMs must be an integer ≥ 0, got undefined"],
  ])("%p is refused: %p %p", (value, rule, type, message) => {
    expect(() => checkNumber(value, rule)).toThrow(type)
    expect(() => checkNumber(value, rule)).toThrow(message)
    expect(message).toMatch(NUMBER_SHAPE)
  })
})

/** The error `f` throws or rejects with. */
async function refusal(f: () => unknown): Promise<Error> {
  try {
    await f()
  } catch (e) {
    return e as Error
  }
  throw new Error("accepted")
}

const COMMAND = [process.execPath, "-e", "0"]

// Every room, through its public entry point: a bad name and a bad number get the one shape and the room's class.
describe("every room says it one way", () => {
  test.each([
    ["SlotBus.listen", () => SlotBus.listen("no spaces"), TypeError],
    ["SlotWorker.connect", () => SlotWorker.connect("no spaces", () => "x"), TypeError],
    ["Topic.open", () => Topic.open("no spaces"), TypeError],
    ["Contest.open", () => Contest.open("no spaces"), ContestOpenError],
    ["hubWorker (name)", () => hubWorker("http://127.0.0.1:1", "a.b"), TypeError],
    ["hubWorker (instance)", () => hubWorker("http://127.0.0.1:1", "a", { instance: "a b" }), TypeError],
  ])("a bad name in %s", async (_api, f, type) => {
    const e = await refusal(f)
    expect(e).toBeInstanceOf(type)
    expect(e.message).toMatch(NAME_SHAPE)
  })

  test.each([
    ["SlotBus.listen", () => SlotBus.listen(busName("vc"), { slots: 0 }), RangeError],
    ["SlotBus.listen streamWindowBytes", () => SlotBus.listen(busName("vc"), { streamWindowBytes: 6000 }), RangeError],
    ["createHub", () => createHub({ port: 0, quiet: true, slots: 0 }), RangeError],
    ["createHub streamWindowBytes", () => createHub({ port: 0, quiet: true, streamWindowBytes: 6000 }), RangeError],
    ["Topic.open capacity", () => Topic.open(busName("vc"), { capacity: 100 }), TypeError],
    ["Topic.open timeoutMs", () => Topic.open(busName("vc"), { timeoutMs: -1 }), RangeError],
    ["Contest.open capacity", () => Contest.open(busName("vc"), { capacity: 100 }), ContestOpenError],
    ["Contest.open joinTimeoutMs", () => Contest.open(busName("vc"), { joinTimeoutMs: -1 }), RangeError],
    ["new Supervisor", () => new Supervisor({ command: COMMAND, instances: -1 }), RangeError],
    ["superviseWorkers", () => superviseWorkers(null, { command: COMMAND, idleTimeoutMs: 0 }), RangeError],
    ["new Backoff", () => new Backoff({ initialMs: -1, maxMs: 1 }), RangeError],
    ["serveStatus", () => serveStatus([], { port: 70_000 }), RangeError],
    ["stdio config", () => loadConfig({ pools: [{ id: "a", command: "x", instances: 0 }] }), StdioConfigError],
  ])("a bad number in %s", async (_api, f, type) => {
    const e = await refusal(f)
    expect(e).toBeInstanceOf(type)
    expect(e instanceof StdioConfigError ? `instances ${e.reason}` : e.message).toMatch(NUMBER_SHAPE)
  })

  test("a request's timeoutMs is checked the same way", async () => {
    await using bus = await SlotBus.listen(busName("vc"))
    const e = await rejection(bus.request({}, { timeoutMs: -1 }))
    expect(e).toBeInstanceOf(RangeError)
    expect((e as Error).message).toMatch(NUMBER_SHAPE)
  })
})
