// The runtime room's contract under Node 26 (src/runtime/node/index.ts), run by test/runtime/node-runtime.test.ts:
// `node node-runtime.ts <libslotbus>` (Node strips this file's types; src/runtime has no parameter properties).
// Prints one JSON object of what it found; the test compares it with what runtime.ts promises.
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeSync,
} from "node:fs"
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
found.quirks = { lateWrite: rt.quirks.lateWrite, names: Object.keys(rt.quirks.all).sort() }

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
  sb_hub_publish: { args: ["ptr", "u32", "u32", "u32", "u32", "u32"], returns: "i32" },
  sb_slot_count: { args: ["ptr"], returns: "u32" },
} as const)
const err = new Int32Array(1)
found.library = {
  abi: lib.sb_abi_version(),
  platform: lib.sb_platform(),
  nullPointer: lib.sb_connect_start(Buffer.from("slotbus-no-such-bus\0"), -1, err),
  errno: err[0],
  clock: typeof lib.sb_rec_now(),
  // node:ffi's own function, no JavaScript before the call: the twin of doubles (csrc/doubles.c)
  direct: [String(lib.sb_hub_publish).includes("[native code]"), String(lib.sb_slot_count).includes("[native code]")],
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
// spawn (node-process.ts): pipes both ways, the exit code, env and cwd, a further fd, kill and its signal, a sink
// whose reader is slow (flush is a promise until the pipe took it all) or gone (flush rejects; no crash), and the
// errors it throws at once
const text = async (stream: AsyncIterable<Uint8Array> | undefined) => {
  let all = ""
  for await (const chunk of stream!) all += new TextDecoder().decode(chunk)
  return all
}
const box = mkdtempSync(join(tmpdir(), "slotbus-node-spawn-"))
try {
  const lastWords = openSync(join(box, "fd3"), "w")
  const sh = rt.spawn(["sh", "-c", 'read l; echo "$l $X $(pwd)"; echo err >&2; echo last >&3; exit 3'], {
    stdio: ["pipe", "pipe", "pipe", lastWords],
    cwd: box,
    env: { X: "from-env", PATH: process.env.PATH! },
  })
  closeSync(lastWords)
  const wrote = sh.stdin!.write("hello\n")
  const flushed = await sh.stdin!.flush()
  const [out, errOut, code] = await Promise.all([text(sh.stdout), text(sh.stderr), sh.exited])
  const piped = {
    wrote,
    flushed,
    out: out.replace(realpathSync(box), "<box>"),
    err: errOut,
    code,
    exitCode: sh.exitCode,
    signal: sh.signalCode,
  }

  const sleeper = rt.spawn(["sleep", "60"], { stdout: "ignore" })
  sleeper.kill("SIGKILL")
  const killed = [await sleeper.exited, sleeper.exitCode, sleeper.signalCode]
  sleeper.kill() // after its exit: nothing

  const slow = rt.spawn(["sh", "-c", "sleep 0.3; head -c 1048576 >/dev/null"], { stdin: "pipe", stdout: "ignore" })
  slow.stdin!.write(new Uint8Array(1 << 20))
  const pending = slow.stdin!.flush()
  const backpressure = [typeof pending, await pending]
  await slow.exited

  const gone = rt.spawn(["true"], { stdin: "pipe" })
  await gone.exited
  gone.stdin!.write("too late\n")
  const late = await Promise.resolve(gone.stdin!.flush()).then(
    () => "flushed",
    () => "rejected",
  )

  const refusals: string[] = []
  for (const [command, cwd] of [[["/no/such/program"]], [["sh"], join(box, "no-such-dir")]] as const)
    try {
      rt.spawn([...command], { cwd })
      refusals.push("started")
    } catch (e) {
      refusals.push((e as NodeJS.ErrnoException).code ?? String(e))
    }
  const sink = rt.stdoutSink()
  sink.write("a line through the stdout sink\n")
  await sink.flush()
  found.spawn = { piped, fd3: readFileSync(join(box, "fd3"), "utf8"), killed, backpressure, late, refusals }
} finally {
  rmSync(box, { recursive: true, force: true })
}
console.log(JSON.stringify(found))
process.exit(0)
