// The runtime room's contract under Node 26 (src/runtime/node.ts), run by test/runtime/node-runtime.test.ts:
// `node node-runtime.ts <libslotbus>` (Node strips this file's types; src/runtime has no parameter properties).
// Prints one JSON object of what it found; the test compares it with what runtime.ts promises.
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import { execFileSync } from "node:child_process"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as rt from "../../../src/runtime/index.ts"

const found: Record<string, unknown> = { runtime: rt.runtimeName }
const { nanoseconds: now } = rt.runtime // called bare, off the module
const a = now()
found.clock = rt.nanoseconds() >= a
found.crc32 = [rt.crc32("123456789"), rt.crc32(new TextEncoder().encode("123456789"))]
found.deepEquals = [rt.deepEquals({ a: [1] }, { a: [1] }, true), rt.deepEquals({ a: undefined }, {}, true)]
found.inspect = rt.inspect({ a: 1 })

// a settled promise: "pending" at the first look (Node cannot peek), "fulfilled" with its value a microtask later
const done = Promise.resolve(7)
const first = rt.promiseState(done)
await null
found.promise = [first, rt.promiseState(done), rt.promiseValue(done), rt.promiseState(new Promise(() => {}))]

// sleep past 2^31 ms does not fire at once (the process's timers are unref'd below by exiting)
let slept = false
void rt.sleep(2 ** 31).then(() => (slept = true))
await new Promise((r) => setTimeout(r, 200))
found.longSleep = slept

// the library: a function of each return kind, and a view over memory it returns
const lib = rt.openLibrary(process.argv[2]!, {
  sb_abi_version: { args: [], returns: "u32" },
  sb_platform: { args: [], returns: "cstring" },
  sb_connect_start: { args: ["cstring", "i64", "ptr"], returns: "ptr" },
  sb_rec_now: { args: [], returns: "f64" },
} as const)
const err = new Int32Array(1)
found.library = {
  abi: lib.sb_abi_version(),
  platform: lib.sb_platform(),
  nullPointer: lib.sb_connect_start(Buffer.from("slotbus-no-such-bus\0"), -1, err),
  errno: err[0],
  clock: typeof lib.sb_rec_now(),
}
const libc = rt.openLibrary("libc.so.6", {
  malloc: { args: ["i64"], returns: "ptr" },
  memset: { args: ["ptr", "i32", "i64"], returns: "ptr" },
  free: { args: ["ptr"], returns: "void" },
} as const)
const p = libc.malloc(64)!
libc.memset(p, 7, 64)
const view = new Int32Array(rt.memoryView(p, 16, 8))
const before = view[0]
Atomics.store(view, 1, 42)
const bytes = new Uint8Array(rt.memoryView(p, 0, 32))
found.view = { before, after: bytes[20], untouched: bytes[15], shared: bytes.buffer instanceof SharedArrayBuffer }
libc.free(p)

// an fd reader: a fifo opened both ends (as an eventfd is one fd), a read settles when bytes come, cancel leaves it
const dir = mkdtempSync(join(tmpdir(), "slotbus-node-fd-"))
const fifo = join(dir, "bell")
execFileSync("mkfifo", [fifo])
const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK)
try {
  const reader = rt.fdReader(fd)
  const read = reader.read()
  setTimeout(() => writeSync(fd, "ring"), 50)
  const { value } = await read
  const second = reader.read()
  writeSync(fd, "again")
  const next = await second
  await reader.cancel()
  found.fd = [new TextDecoder().decode(value), new TextDecoder().decode(next.value), writeSync(fd, "open")]
} finally {
  closeSync(fd)
}

// unix sockets (the per-host election's): bound on return, a path in use throws, echo both ways, stop(true) closes
// the connections and unlinks the path, a refused connect calls connectError and rejects
try {
  const path = join(dir, "seat")
  const server = rt.listen({ unix: path, socket: { data: (s, b) => void s.write(b) } })
  let again = ""
  try {
    rt.listen({ unix: path, socket: { data() {} } })
  } catch (e) {
    again = (e as NodeJS.ErrnoException).code ?? String(e)
  }
  const echoed = Promise.withResolvers<string>()
  const closed = Promise.withResolvers<void>()
  const client = await rt.connect({
    unix: path,
    socket: { data: (_s, b) => echoed.resolve(new TextDecoder().decode(b)), close: () => closed.resolve() },
  })
  client.write("seat?")
  const echo = await echoed.promise
  server.stop(true)
  await closed.promise
  const refused: string[] = []
  const connected = await rt
    .connect({
      unix: path,
      socket: {
        data() {},
        connectError: (_s, e) => void refused.push(`connectError ${(e as NodeJS.ErrnoException).code}`),
      },
    })
    .then(
      () => "connected",
      (e: NodeJS.ErrnoException) => `rejected ${e.code}`,
    )
  found.unix = { again, echo, closed: true, unlinked: !existsSync(path), refused: [...refused, connected] }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
try {
  rt.spawn(["true"])
} catch (e) {
  found.missing = `${(e as Error).name}: ${(e as Error).message}`
}
console.log(JSON.stringify(found))
process.exit(0)
