// The control socket (docs/PROTOCOL.md §14) against clients that send a request and never read its answer: they
// must not hold the bus's four places, nor their answers, for good. Real sockets: each stalled client is a
// connected fd of the test with a small receive buffer, never read; the workers are test/support/echo-worker.ts.
import { afterEach, expect, test } from "bun:test"
import { dlopen, FFIType, ptr } from "bun:ffi"
import { closeSync, writeSync } from "node:fs"
import { SlotBus } from "../../../src/index.ts"
import { busName as cname } from "../../../src/core/wire/codec.ts"
import { ControlCallError, controlCall } from "../../../src/core/ops/control-client.ts"
import { CONNECTIONS_MAX } from "../../../src/core/ops/control-wire.ts"
import { loadNative, native } from "../../../src/native/ffi.ts"
import { busName, spawnWorker, stopAll, until } from "../../support/helpers.ts"

const libc = dlopen(process.platform === "linux" ? "libc.so.6" : "libc.dylib", {
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
})
const [SOL_SOCKET, SO_RCVBUF] = process.platform === "linux" ? [1, 8] : [0xffff, 0x1002]

const fds: number[] = []
const buses: SlotBus[] = []
afterEach(async () => {
  for (const fd of fds.splice(0)) closeSync(fd)
  await stopAll()
  for (const b of buses.splice(0)) await b.close({ drain: false })
})

/** A control connection that sends `path`'s GET and then never reads: its fd, with a 4 KiB receive buffer. */
async function stalledClient(bus: string, path: string): Promise<number> {
  await loadNative()
  const fd = native.sb_ctl_connect(cname(bus))
  expect(fd).toBeGreaterThanOrEqual(0)
  fds.push(fd)
  const size = new Int32Array([4096])
  expect(libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, ptr(size), 4)).toBe(0)
  const line = Buffer.from(`${JSON.stringify({ v: 1, method: "GET", path })}\n`)
  writeSync(fd, Buffer.concat([line, new Uint8Array(4)]))
  return fd
}

/** A call's outcome: its status and body length, or the control error's type. */
async function tryCall(bus: string): Promise<string> {
  try {
    const answer = await controlCall(bus, { path: "/large?bytes=100000" })
    let n = 0
    for await (const chunk of answer.body) n += chunk.length
    return `${answer.status} ${n}`
  } catch (e) {
    if (e instanceof ControlCallError) return e.type
    throw e
  }
}

test("clients that send a request and never read its answer are cut off, and the next call is served", async () => {
  const bus = await SlotBus.listen(busName("ctlstall"))
  buses.push(bus)
  await spawnWorker(bus.name)
  await bus.waitForWorkers(1)
  for (let i = 0; i < CONNECTIONS_MAX; i++) await stalledClient(bus.name, "/large?bytes=8000000")
  // every stalled client got its answer from the worker: the bus now only waits on their sockets
  await until(() => bus.stats().responses >= CONNECTIONS_MAX, "the workers to answer the stalled clients")
  let last = ""
  await until(
    async () => (last = await tryCall(bus.name)) !== "Busy",
    "a call to get past the stalled clients",
    40_000,
    200,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; the last call got ${last}`)
  })
  expect(last).toBe("200 100000")
}, 60_000)
