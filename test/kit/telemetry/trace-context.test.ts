// kit/telemetry/trace-context.ts: the one W3C trace context parser (issue 56 items 11 and 18), case by case as the W3C
// test suite (w3c/trace-context test/test.py) sends them. End to end: test/core/probe/trace-limits.test.ts (bus.fetch, the
// recorder), test/http/trace.test.ts (the HTTP hub), test/events/remote.test.ts (another host's event).
import { describe, expect, test } from "bun:test"
import {
  checkTraceOptions,
  parseTraceparent,
  parseTracestate,
  receivedContext,
  TRACESTATE_MAX,
} from "../../../src/kit/index.ts"

const ID = "12345678901234567890123456789012"
const SPAN = "1234567890123456"
const V00 = `00-${ID}-${SPAN}-01`
const lc = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
const VALUE_CHARS = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i))
  .filter((c) => c !== "," && c !== "=")
  .join("")
  .slice(0, 255)
  .concat("~")

describe("parseTraceparent", () => {
  test.each([
    ["version 00", V00, { version: "00", traceId: ID, spanId: SPAN, traceFlags: 1 }],
    ["flags 00", `00-${ID}-${SPAN}-00`, { version: "00", traceId: ID, spanId: SPAN, traceFlags: 0 }],
    ["a later version", `cc-${ID}-${SPAN}-01`, { version: "cc", traceId: ID, spanId: SPAN, traceFlags: 1 }],
    ["a later version's longer form", `cc-${ID}-${SPAN}-01-what-the-future-will-be-like`, { traceId: ID }],
  ])("takes %s: %s", (_, value, parts) => expect(parseTraceparent(value)).toMatchObject(parts))

  test.each([
    ["version ff", `ff-${ID}-${SPAN}-01`],
    ["version ff, longer, with ESC", `ff-${ID}-${SPAN}-01-\x1b[2J`],
    ["version 00 with a trailing dot", `${V00}.`],
    ["version 00 with fields after it", `${V00}-what-the-future-will-be-like`],
    ["a later version going on without a dash", `cc-${ID}-${SPAN}-01.what-the-future-will-be-like`],
    ["an illegal version character", `.0-${ID}-${SPAN}-01`],
    ["a version of 3 digits", `000-${ID}-${SPAN}-01`],
    ["a version of 1 digit", `0-${ID}-${SPAN}-01`],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`],
    ["an all-zero parent id", `00-${ID}-${"0".repeat(16)}-01`],
    ["upper-case hex", `00-${ID.replace("1", "A")}-${SPAN}-01`],
    ["a trace id of 33 digits", `00-${ID}3-${SPAN}-01`],
    ["a trace id of 31 digits", `00-${ID.slice(1)}-${SPAN}-01`],
    ["a parent id of 17 digits", `00-${ID}-${SPAN}7-01`],
    ["a parent id of 15 digits", `00-${ID}-${SPAN.slice(1)}-01`],
    ["flags of 3 digits", `00-${ID}-${SPAN}-001`],
    ["flags of 1 digit", `00-${ID}-${SPAN}-1`],
    ["an illegal flags character", `00-${ID}-${SPAN}-.0`],
    ["an empty value", ""],
  ])("refuses %s: %j", (_, value) => expect(parseTraceparent(value)).toBeNull())
})

describe("parseTracestate", () => {
  const members32 = Array.from({ length: 32 }, (_, i) => `bar${String(i + 1).padStart(2, "0")}=${i}`)
  test.each([
    ["two members", "foo=1,bar=2", "foo=1,bar=2"],
    ["optional whitespace around members", "foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3"],
    ["empty members", ",foo=1,,", "foo=1"],
    ["nothing", "", ""],
    ["32 members", members32.join(","), members32.join(",")],
    ["every key and value character", `${lc}=${VALUE_CHARS}`, `${lc}=${VALUE_CHARS}`],
    ["a tenant@system key", `${lc}@a-z0-9_-*/=1`, `${lc}@a-z0-9_-*/=1`],
    ["a key of 256 characters", `foo=1,${"z".repeat(256)}=1`, `foo=1,${"z".repeat(256)}=1`],
    ["a tenant of 241 and a system of 14", `${"t".repeat(241)}@${"v".repeat(14)}=1`, null],
    [
      "members over 512 characters: the long ones go first, whole",
      `a=1,${"k".repeat(200)}=v,b=2,${"m".repeat(250)}=${"v".repeat(250)},c=3`,
      `a=1,${"k".repeat(200)}=v,b=2,c=3`,
    ],
    [
      "members over 512 characters, none long: from the end, whole",
      Array.from({ length: 8 }, (_, i) => `k${i}=${"v".repeat(100)}`).join(","),
      Array.from({ length: 4 }, (_, i) => `k${i}=${"v".repeat(100)}`).join(","),
    ],
  ])("passes on %s", (_, value, out) =>
    expect(parseTracestate(value)).toBe(out ?? `${"t".repeat(241)}@${"v".repeat(14)}=1`),
  )

  test.each([
    ["33 members", [...members32, "bar33=33"].join(",")],
    ["a key twice", "foo=1,foo=2"],
    ["an upper-case key", "FOO=1"],
    ["a space before =", "foo =1"],
    ["a dot in a key", "foo.bar=1"],
    ["an empty tenant", "@foo=1,bar=2"],
    ["an empty system", "foo@=1,bar=2"],
    ["two @", "foo@bar@baz=1"],
    ["a key of 257 characters", `foo=1,${"z".repeat(257)}=1`],
    ["a tenant of 242", `${"t".repeat(242)}@v=1`],
    ["a system of 15", `t@${"v".repeat(15)}=1`],
    ["a value of 257 characters", `foo=${"v".repeat(257)}`],
    ["an empty value", "foo="],
    ["no =", "foo"],
    ["ESC in a value", "congo=\x1b]0;title\x07"],
    ["a non-ASCII value", "foo=é"],
  ])("drops all of a tracestate with %s", (_, value) => expect(parseTracestate(value)).toBeNull())
})

describe("receivedContext and checkTraceOptions", () => {
  test("a received traceparent with optional whitespace is taken; a later version is passed on as version 00", () => {
    expect(receivedContext(`\t ${V00} \t`)).toEqual({ traceparent: V00 })
    expect(receivedContext(`cc-${ID}-${SPAN}-01-future`, "foo=1")).toEqual({ traceparent: V00, tracestate: "foo=1" })
  })

  test("a received context with a refused traceparent is none, whatever its tracestate; a bad tracestate alone goes", () => {
    expect(receivedContext(`ff-${ID}-${SPAN}-01`, "foo=1")).toBeUndefined()
    expect(receivedContext(undefined, "foo=1")).toBeUndefined()
    expect(receivedContext(V00, "FOO=1")).toEqual({ traceparent: V00 })
  })

  test("a received tracestate of 12,000 characters is passed on as at most 512, whole members", () => {
    const long = Array.from({ length: 24 }, (_, i) => `m${i}${"k".repeat(240)}=${"v".repeat(256)}`)
    const ts = receivedContext(V00, ["a=1", ...long, "b=2"].join(","))!.tracestate!
    expect(ts).toBe(["a=1", long[0], "b=2"].join(",")) // the long members from the end go, till it fits
    expect(ts.length).toBeLessThanOrEqual(TRACESTATE_MAX)
  })

  test.each([
    [{ traceparent: `ff-${ID}-${SPAN}-01` }, /traceparent must be a W3C traceparent/],
    [{ traceparent: V00, tracestate: "a=1,a=2" }, /tracestate must be a W3C tracestate/],
    [{ traceparent: V00, tracestate: `a=${"v".repeat(200)},b=${"v".repeat(200)},c=${"v".repeat(200)}` }, /at most 512/],
    [{ traceparent: V00, tracestate: 7 }, /tracestate must be/],
    [{ tracestate: "a=1" }, /goes with a traceparent/],
  ])("an explicit option %j is a TypeError naming the format", (o, message) => {
    expect(() => checkTraceOptions(o, "test")).toThrow(TypeError)
    expect(() => checkTraceOptions(o, "test")).toThrow(message)
  })
})
