// The runtime room's contract (src/runtime/runtime.ts) kept by src/runtime/node/index.ts under Node 26: the same promises
// runtime.test.ts checks of Bun's, run in a Node process (test/support/runtime/node-runtime.ts), plus the library's
// pointers (bigint, NULL as null), a view over native memory and the fd reader's uv_poll.
import { expect, test } from "bun:test"
import { ABI_VERSION } from "../../src/native/ffi.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { REPO, run } from "../support/helpers.ts"
import { findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"
import { join } from "node:path"

const node = findNode()
if (!node) console.log(`skipping the Node runtime test: no Node >= 26.1 here (${NODE_INSTALL})`)

test.skipIf(node === null)("src/runtime/node/index.ts keeps the runtime contract under Node 26", async () => {
  const r = await run(
    [node!, ...nodeFlags(node!), join(REPO, "test/support/runtime/node-runtime.ts"), await libraryPath()],
    {
      env: { ...process.env, NODE_NO_WARNINGS: "1" },
      timeoutMs: 60_000,
    },
  )
  expect(r.code, r.stderr).toBe(0)
  const found = JSON.parse(r.stdout.trim().split("\n").at(-1)!)
  expect(found).toEqual({
    runtime: "node",
    clock: true,
    crc32: [0xcbf43926, 0xcbf43926],
    deepEquals: [true, false],
    inspect: "{ a: 1 }",
    // Node's server writes a late answer as it writes any: no late write to work around; its own quirks listed
    quirks: {
      lateWrite: null,
      names: ["FFI_CALLBACK_NO_MICROTASKS", "FFI_EXPERIMENTAL_WARNING", "NO_PROMISE_PEEK", "TIMER_OVERFLOW"],
    },
    // Node cannot peek: pending at the first look, fulfilled with its value a microtask later
    promise: ["pending", "fulfilled", 7, "pending"],
    longSleep: false,
    // a NULL pointer comes back as null (bun:ffi's way), a C string as a string; ECONNREFUSED: no such bus
    // sb_hub_publish (per request, six arguments) is bound to its twin of doubles and called directly; a call without
    // a twin goes through node:ffi's checks
    library: {
      abi: ABI_VERSION,
      platform: expect.any(String),
      nullPointer: null,
      errno: -111,
      clock: "number",
      direct: [true, false],
    },
    // memset's 7s read through the view; an Atomics.store through it lands in the memory; a plain ArrayBuffer
    view: { before: 0x07070707, after: 42, untouched: 7, shared: false },
    fd: ["ring", "again", 4],
    unix: {
      again: "EADDRINUSE",
      echo: "seat?",
      closed: true,
      unlinked: true,
      refused: ["connectError ENOENT", "rejected ENOENT"],
    },
    spawn: {
      piped: {
        wrote: 6,
        flushed: 6,
        out: "hello from-env <box>\n",
        err: "err\n",
        code: 3,
        exitCode: 3,
        signal: null,
      },
      fd3: "last\n",
      killed: [137, null, "SIGKILL"], // as Bun's exited: 128 + the signal's number
      backpressure: ["object", 1 << 20],
      late: "rejected",
      refusals: ["ENOENT", "ENOENT"],
    },
  })
  expect(r.stdout).toContain("a line through the stdout sink\n")
})
