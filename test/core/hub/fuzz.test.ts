// Property test of the public API: whatever a caller passes (odd strings, bodies of every kind, detached
// buffers, bad options, aborts, timeouts), each request settles alone with an answer or an Error, nothing
// escapes, every slot comes back free, and the bus keeps serving.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import fc from "fast-check"
import { BorrowedResponse, SlotBus, SlotResponse, SlotWorker, type RequestOptions } from "../../../src/index.ts"
import { busName, until } from "../../support/helpers.ts"

const MAX_HEAD = 1024
const MAX_BODY = 32 * 1024

let bus: SlotBus
let worker: SlotWorker
const escaped: unknown[] = []
const onEscape = (e: unknown) => void escaped.push(e)

beforeAll(async () => {
  process.on("uncaughtException", onEscape)
  process.on("unhandledRejection", onEscape)
  bus = await SlotBus.listen(busName("fuzz"), {
    slots: 4,
    queue: 16,
    maxHeadBytes: MAX_HEAD,
    maxBodyBytes: MAX_BODY,
    timeoutMs: 2000,
  })
  worker = await SlotWorker.connect(bus.name, async (req) => {
    const delay = Number(req.headers.get("x-delay") ?? (req.body.length % 3) * 5)
    if (delay > 0) await Bun.sleep(delay)
    if (req.headers.get("x-throw")) throw new Error("asked to throw")
    if (req.headers.get("x-zero-copy")) {
      const view = req.reply(req.body.length, { headers: { "x-path": req.path } })
      view.set(req.body)
      return view
    }
    return { status: 200, headers: { "x-path": req.path }, body: req.body }
  })
  await bus.waitForWorkers(1)
})

afterAll(async () => {
  await worker?.close({ timeoutMs: 500 })
  await bus?.close({ drain: false })
  process.off("uncaughtException", onEscape)
  process.off("unhandledRejection", onEscape)
})

// Strings of any UTF-16 code units: lone surrogates, NUL, controls, now and then long ones.
const units = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 24 }).map((a) => String.fromCharCode(...a))
const anyString = fc.oneof(
  { weight: 6, arbitrary: units },
  { weight: 1, arbitrary: fc.constantFrom("", "\0", "\uD800", "\uDC00x", "GET", "/a/b?c=d", "€") },
  { weight: 1, arbitrary: fc.integer({ min: MAX_HEAD - 40, max: MAX_HEAD * 2 }).map((n) => "\uD83D".repeat(n / 3)) },
)

type BodyCase = { make: () => { body: unknown; expected: Uint8Array | null; detachAfter?: ArrayBuffer }; label: string }
const bytes = fc.uint8Array({ maxLength: 256 })
const body: fc.Arbitrary<BodyCase> = fc.oneof(
  fc.constant<BodyCase>({ label: "none", make: () => ({ body: undefined, expected: new Uint8Array(0) }) }),
  fc.constant<BodyCase>({ label: "null", make: () => ({ body: null, expected: new Uint8Array(0) }) }),
  anyString.map<BodyCase>((s) => ({
    label: "string",
    make: () => ({ body: s, expected: new TextEncoder().encode(s) }),
  })),
  fc.tuple(bytes, fc.nat(7)).map<BodyCase>(([b, off]) => ({
    label: "odd view",
    make: () => {
      const big = new Uint8Array(b.length + off + 3)
      big.set(b, off)
      return { body: big.subarray(off, off + b.length), expected: b }
    },
  })),
  bytes.map<BodyCase>((b) => ({ label: "ArrayBuffer", make: () => ({ body: b.slice().buffer, expected: b }) })),
  fc.tuple(bytes, fc.nat(5)).map<BodyCase>(([b, off]) => ({
    label: "shared",
    make: () => {
      const view = new Uint8Array(new SharedArrayBuffer(b.length + off + 1), off, b.length)
      view.set(b)
      return { body: view, expected: b }
    },
  })),
  bytes
    .filter((b) => b.length % 4 === 0)
    .map<BodyCase>((b) => ({
      label: "Uint32Array",
      make: () => ({ body: new Uint32Array(b.slice().buffer), expected: b }),
    })),
  bytes.map<BodyCase>((b) => ({
    label: "detached before",
    make: () => {
      const buf = b.slice().buffer
      const view = new Uint8Array(buf)
      structuredClone(buf, { transfer: [buf] })
      return { body: view, expected: null }
    },
  })),
  bytes.map<BodyCase>((b) => ({
    label: "detached after request()",
    make: () => {
      // Sent already if a slot was free (then the answer is these bytes), else a TypeError when its turn comes.
      const copy = b.slice()
      return { body: copy, expected: b, detachAfter: copy.buffer }
    },
  })),
  fc.integer({ min: MAX_BODY, max: MAX_BODY + 2 }).map<BodyCase>((n) => ({
    label: "at and over maxBodyBytes",
    make: () => {
      const b = new Uint8Array(n).fill(1)
      return { body: b, expected: b }
    },
  })),
  fc
    .constantFrom<unknown>(42, {}, [1, 2], Symbol.iterator, () => 1)
    .map<BodyCase>((v) => ({ label: "not a body", make: () => ({ body: v, expected: null }) })),
)

const options = fc.record(
  {
    timeoutMs: fc.constantFrom<unknown>(undefined, 0, 1, 30, 2000, -1, 1.5, Number.NaN, "10", 2 ** 40),
    abortAfterMs: fc.constantFrom<number | null | "before">(null, null, "before", 0, 3, 15),
    borrow: fc.constantFrom<unknown>(undefined, true, false, "yes"),
    delay: fc.constantFrom(0, 0, 2, 20),
    throws: fc.constantFrom(false, false, false, false, true),
    zeroCopy: fc.boolean(),
  },
  { requiredKeys: ["abortAfterMs", "delay"] },
)

const op = fc.record({
  raw: fc.boolean(),
  method: fc.oneof(fc.constantFrom<unknown>("GET", "POST", undefined, 7), anyString),
  path: fc.oneof(fc.constantFrom<unknown>("/", undefined, null), anyString),
  headers: fc.oneof(
    fc.constant<unknown>(undefined),
    fc.array(fc.tuple(anyString, anyString), { maxLength: 4 }),
    fc.dictionary(anyString, anyString, { maxKeys: 3 }),
    fc.constantFrom<unknown>("x", 5, [["only-one"]], new Headers({ a: "b" })),
  ),
  body,
  options,
})

async function run(o: typeof op extends fc.Arbitrary<infer T> ? T : never): Promise<string> {
  const { body: b, expected, detachAfter } = o.body.make()
  const ac = new AbortController()
  const opts: Record<string, unknown> = {}
  if (o.options.timeoutMs !== undefined) opts.timeoutMs = o.options.timeoutMs
  if (o.options.borrow !== undefined) opts.borrow = o.options.borrow
  if (o.options.abortAfterMs !== null) opts.signal = ac.signal
  if (o.options.abortAfterMs === "before") ac.abort()
  const headers =
    o.headers instanceof Headers || !Array.isArray(o.headers)
      ? o.headers
      : [
          ...(o.headers as [string, string][]),
          ...(o.options.delay > 0 ? [["x-delay", String(o.options.delay)]] : []),
          ...(o.options.throws ? [["x-throw", "1"]] : []),
          ...(o.options.zeroCopy ? [["x-zero-copy", "1"]] : []),
        ]
  let p: Promise<unknown>
  try {
    p = o.raw
      ? bus.call(b as never, opts as RequestOptions)
      : bus.request({ method: o.method, path: o.path, headers: headers, body: b } as never, opts as RequestOptions)
  } catch (e) {
    return `threw synchronously: ${e}` // never allowed: errors arrive as rejections
  }
  if (detachAfter) structuredClone(detachAfter, { transfer: [detachAfter] })
  if (typeof o.options.abortAfterMs === "number") setTimeout(() => ac.abort(), o.options.abortAfterMs)
  try {
    const v = await p
    const got =
      v instanceof BorrowedResponse ? v : v instanceof SlotResponse ? v : { body: v as Uint8Array, status: 200 }
    const body = got.body.slice()
    if (v instanceof BorrowedResponse) v.release()
    if (!(got.body instanceof Uint8Array)) return "answer without a byte body"
    if (expected === null) return `answered though the body was invalid (${o.body.label})`
    if (Buffer.compare(body, expected) !== 0)
      return `wrong body (${o.body.label}): ${body.length} bytes for ${expected.length}`
    return "ok"
  } catch (e) {
    if (e === ac.signal.reason) return "ok"
    return e instanceof Error ? "ok" : `rejected with a non-Error ${String(e)}`
  }
}

describe("the API under arbitrary input", () => {
  test("each request settles alone (an answer that matches, or an Error); slots come back free; the bus keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), async (ops) => {
        const verdicts = await Promise.all(ops.map(run))
        expect(verdicts.filter((v) => v !== "ok")).toEqual([])
        await until(
          () =>
            bus.stats().queued === 0 &&
            bus.workers.every((w) => w.inFlight === 0 && w.waiting === 0 && w.slots.every((s) => s === "free")),
          "every slot is free",
          5000,
        )
        const sane = await bus.call("still serving")
        expect(new TextDecoder().decode(sane)).toBe("still serving")
        expect(escaped).toEqual([])
        expect(bus.workerCount).toBe(1)
      }),
      { numRuns: 300, seed: Number(process.env.FUZZ_SEED ?? 20261122) },
    )
    expect(bus.stats().internalErrors).toBe(0)
  }, 60_000)
})
