// The runtime room's contract (src/runtime/runtime.ts) as one table of cases (test/support/runtime/contract-cases.ts),
// each run against Bun's adapter in this process and against Node's in a Node 26 child (contract-run.ts, the module
// unbundled with its types stripped). A row is what both find, or { bun, node } where the runtimes differ by design.
import { beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { heldLate } from "../../src/core/endpoint/response.ts"
import { ABI_VERSION } from "../../src/native/ffi.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import * as rt from "../../src/runtime/index.ts"
import { BUN_QUIRKS, LATE_WRITE } from "../../src/runtime/bun/quirks.ts"
import { NODE_QUIRKS } from "../../src/runtime/node/quirks.ts"
import { REPO, run } from "../support/helpers.ts"
import { cases, SINK_LINE } from "../support/runtime/contract-cases.ts"
import { findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping the Node adapter's cases: no Node >= 26.1 here (${NODE_INSTALL})`)

class Differs {
  constructor(
    readonly bun: unknown,
    readonly node: unknown,
  ) {}
}
const differs = (bun: unknown, node: unknown) => new Differs(bun, node)
type Adapter = "bun" | "node"

const EXPECTED: Record<keyof typeof cases, unknown> = {
  "its name says which runtime it is": differs(["bun", "bun"], ["node", "node"]),
  "the clock works called bare, off its module, and does not go back": true,
  // Bun's clock counts from the process's start (JSC keeps a number a number); Node's from 2^32, in its first second too
  "the clock reads past 2^31 ns from the first reading (Node: not as a small integer, which V8 would keep a field in)":
    differs(expect.any(Boolean), true),
  "crc32 hashes a string and its bytes alike": [0xcbf43926, 0xcbf43926],
  "deepEquals in strict mode tells a missing key from an undefined one": [true, false],
  // Bun.serve's late write is Bun's alone: Node's server writes a late answer as it writes any
  "the quirks are the adapter's data: its late write and the names of all": differs(
    { lateWrite: LATE_WRITE, names: Object.keys(BUN_QUIRKS).sort() },
    { lateWrite: null, names: Object.keys(NODE_QUIRKS).sort() },
  ),
  // Node cannot peek (NO_PROMISE_PEEK): pending at the first look, fulfilled with its value a microtask later
  "the promise peeks: a settled promise at the first look and a microtask later, its value, a pending one": differs(
    ["fulfilled", "fulfilled", 7, "pending"],
    ["pending", "fulfilled", 7, "pending"],
  ),
  // Node keeps what it saw on the promise, or beside it for one that takes no property
  "the promise peeks see a frozen promise and a rejected one, a microtask after the first look": [
    "fulfilled",
    "cold",
    "rejected",
    "no",
  ],
  "sleep takes a delay past 2^31−1 ms without firing at once (setTimeout would: TIMER_OVERFLOW)": false,
  "sleepSync takes a negative or NaN delay as 0 and returns; a positive one blocks for it": [
    "returned",
    "returned",
    "returned",
    "returned",
    true,
  ],
  "sleep takes a negative or NaN delay as 0 and settles": ["settled", "settled", "settled"],
  // ECONNREFUSED: no such bus. Node binds sb_hub_publish (per request, six arguments) to its twin of doubles and
  // calls it directly, a function without a twin through node:ffi's checks; bun:ffi compiles each to native code.
  "a library's functions return each kind: u32, a C string, NULL as null, f64; errno comes back through a pointer": {
    abi: ABI_VERSION,
    platform: expect.any(String),
    nullPointer: null,
    errno: -111,
    clock: "number",
    direct: differs([true, true], [true, false]),
  },
  // memset's 7s read through the view; an Atomics.store through it lands in the memory
  "a view over native memory reads it and writes through to it, a plain ArrayBuffer": {
    before: 0x07070707,
    after: 42,
    untouched: 7,
    shared: false,
  },
  // before: Node's reader ended at the reset (libuv's EPOLLERR) without reading the byte, "hub-gone" for "hub-closed"
  "an fd reader gives the bytes sent before a reset, then ends": ["C", "failed"],
  "an fd reader settles a read when bytes arrive, later or at once, and cancel leaves the fd open": [
    "ring",
    "again",
    4,
  ],
  "serveHttp limits no body of its own: a 3 GiB declared body reaches the handler, and its answer comes back": [
    "413",
    true,
  ],
  "unix sockets: listen, a path in use, echo, stop(true), a refused connect": {
    again: "EADDRINUSE",
    echo: "seat?",
    closed: true,
    unlinked: true,
    refused: ["connectError ENOENT", "rejected ENOENT"],
  },
  "spawn pipes both ways, with env, cwd and a further fd, and reports the exit code": {
    wrote: 6,
    flushed: 6,
    out: "hello from-env <box>\n",
    err: "err\n",
    code: 3,
    exitCode: 3,
    signal: null,
    fd3: "last\n",
  },
  "a killed child's exit is 128 + its signal's number, its signal named; kill after the exit does nothing": [
    137,
    null,
    "SIGKILL",
  ],
  "a child's stdin whose reader is slow: flush is a promise of the count once the pipe took it all": [
    "object",
    1 << 20,
  ],
  // Bun's FileSink does not tell of the EPIPE (runtime.ts's OutputSink promises a rejection); Node's stream does
  "a child's stdin whose reader is gone: a write does not crash, and flush says what became of it": differs(
    "flushed",
    "rejected",
  ),
  "spawn throws at once for a missing program or working directory": ["ENOENT", "ENOENT"],
  "this process's stdout sink takes a line and flushes": [SINK_LINE.length, SINK_LINE.length],
}

/** The row's value for one adapter: its side of each Differs within it. */
function expected(row: unknown, adapter: Adapter): unknown {
  if (row instanceof Differs) return row[adapter]
  if (Array.isArray(row)) return row.map((v) => expected(v, adapter))
  if (row !== null && typeof row === "object" && Object.getPrototypeOf(row) === Object.prototype)
    return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, expected(v, adapter)]))
  return row
}

const names = Object.keys(cases)
const lib = await libraryPath()

test("every case has its row in the table, and every row its case", () => {
  expect(Object.keys(EXPECTED).sort()).toEqual([...names].sort())
})

describe("Bun's adapter, in this process", () => {
  test.each(names)("%s", async (name) => {
    expect(await cases[name]!(rt, lib)).toEqual(expected(EXPECTED[name], "bun"))
  })

  test("the core holds a late answer of 15–64 KiB, its adapter's late write, and no other size", () => {
    expect(rt.quirks.all).toEqual(BUN_QUIRKS)
    expect(LATE_WRITE).toEqual({ minBytes: 15 * 1024, maxBytes: 64 * 1024 })
    const late = Number.NaN // a turn no answer is collected in
    const sizes = [15 * 1024, 15 * 1024 + 1, 64 * 1024, 64 * 1024 + 1]
    expect(sizes.map((n) => heldLate(n, late))).toEqual([false, true, true, false])
  })
})

describe.skipIf(node === null)("Node's adapter, in a Node 26 child", () => {
  let found: Record<string, unknown> = {}
  let stdout = ""
  beforeAll(async () => {
    const r = await run([node!, ...nodeFlags(node!), join(REPO, "test/support/runtime/contract-run.ts"), lib], {
      env: { ...process.env, NODE_NO_WARNINGS: "1" },
      timeoutMs: 60_000,
    })
    expect(r.code, r.stderr).toBe(0)
    stdout = r.stdout
    found = JSON.parse(r.stdout.trim().split("\n").at(-1)!)
  }, 90_000)

  test.each(names)("%s", (name) => {
    expect(found[name]).toEqual(expected(EXPECTED[name], "node"))
  })

  test("the line written through the stdout sink reaches the process's stdout", () => {
    expect(stdout).toContain(SINK_LINE)
  })
})
