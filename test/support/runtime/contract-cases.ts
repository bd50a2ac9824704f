// The runtime contract's cases (src/runtime/runtime.ts): each a function of the runtime module that returns what it
// found, compared with one table by test/runtime/runtime.test.ts, which runs them in its own process (Bun's adapter)
// and through contract-run.ts in a Node 26 child (Node's). Node strips this file's types: no parameter properties.
import { execFileSync } from "node:child_process"
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
import { connect as netConnect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type * as Runtime from "../../../src/runtime/index.ts"

type Rt = typeof Runtime
type Case = (rt: Rt, lib: string) => unknown

/** The line contract-run.ts's Node child writes through its stdout sink (the test looks for it in the output). */
/** What a connect to `to` says: each connectError call's code, then "connected" or "rejected <code>". */
export async function connectOutcome(rt: Rt, to: { unix: string } | { hostname: string; port: number }) {
  const refused: string[] = []
  const socket = {
    data() {},
    connectError: (_s: unknown, e: Error) => void refused.push(`connectError ${(e as NodeJS.ErrnoException).code}`),
  }
  const connected = await rt.connect({ ...to, socket }).then(
    () => "connected",
    (e: NodeJS.ErrnoException) => `rejected ${e.code}`,
  )
  return [...refused, connected]
}

export const SINK_LINE = "a line through the stdout sink\n"

const text = async (stream: AsyncIterable<Uint8Array> | undefined) => {
  let all = ""
  for await (const chunk of stream!) all += new TextDecoder().decode(chunk)
  return all
}

/** A fresh slotbus-… folder for `use`, removed after it. */
async function inTempDir<T>(use: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-contract-"))
  try {
    return await use(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const cases: Record<string, Case> = {
  "its name says which runtime it is": (rt) => [rt.runtimeName, rt.runtime.name],

  "the clock works called bare, off its module, and does not go back": (rt) => {
    const { nanoseconds: now } = rt.runtime
    const a = now()
    return rt.nanoseconds() >= a
  },

  "the clock reads past 2^31 ns from the first reading (Node: not as a small integer, which V8 would keep a field in)":
    (rt) => rt.nanoseconds() > 2 ** 31,

  "crc32 hashes a string and its bytes alike": (rt) => [
    rt.crc32("123456789"),
    rt.crc32(new TextEncoder().encode("123456789")),
  ],

  "deepEquals in strict mode tells a missing key from an undefined one": (rt) => [
    rt.deepEquals({ a: [1] }, { a: [1] }, true),
    rt.deepEquals({ a: undefined }, {}, true),
  ],

  "the quirks are the adapter's data: its late write and the names of all": (rt) => ({
    lateWrite: rt.quirks.lateWrite,
    names: Object.keys(rt.quirks.all).sort(),
  }),

  "the promise peeks: a settled promise at the first look and a microtask later, its value, a pending one": async (
    rt,
  ) => {
    const done = Promise.resolve(7)
    const first = rt.promiseState(done)
    await null
    return [first, rt.promiseState(done), rt.promiseValue(done), rt.promiseState(new Promise(() => {}))]
  },

  "the promise peeks see a frozen promise and a rejected one, a microtask after the first look": async (rt) => {
    const frozen = Object.freeze(Promise.resolve("cold"))
    const failed = Promise.reject(new Error("no"))
    failed.catch(() => {})
    rt.promiseState(frozen)
    rt.promiseState(failed)
    await null
    return [
      rt.promiseState(frozen),
      rt.promiseValue(frozen),
      rt.promiseState(failed),
      (rt.promiseValue(failed) as Error).message,
    ]
  },

  "sleep takes a delay past 2^31−1 ms without firing at once (setTimeout would: TIMER_OVERFLOW)": async (rt) => {
    let slept = false
    void rt.sleep(2 ** 31).then(() => (slept = true))
    await new Promise((r) => setTimeout(r, 200))
    return slept
  },

  // before: Bun's threw on -5 and -Infinity; Node's blocked for good on NaN (Atomics.wait's NaN is no timeout)
  "sleepSync takes a negative or NaN delay as 0 and returns; a positive one blocks for it": (rt) => {
    const found: unknown[] = []
    for (const ms of [-5, Number.NaN, Number.NEGATIVE_INFINITY, 0]) {
      const t = performance.now()
      try {
        rt.sleepSync(ms)
        found.push(performance.now() - t < 1000 ? "returned" : "blocked")
      } catch (e) {
        found.push(`threw ${(e as Error).message}`)
      }
    }
    const t = performance.now()
    rt.sleepSync(30)
    found.push(performance.now() - t >= 29)
    return found
  },

  "sleep takes a negative or NaN delay as 0 and settles": async (rt) => {
    const settled = (ms: number) =>
      Promise.race([rt.sleep(ms).then(() => "settled"), new Promise((r) => setTimeout(() => r("pending"), 1000))])
    return [await settled(-5), await settled(Number.NaN), await settled(Number.NEGATIVE_INFINITY)]
  },

  "a library's functions return each kind: u32, a C string, NULL as null, f64; errno comes back through a pointer": (
    rt,
    lib,
  ) => {
    const l = rt.openLibrary(lib, {
      sb_abi_version: { args: [], returns: "u32" },
      sb_platform: { args: [], returns: "cstring" },
      sb_connect_start: { args: ["cstring", "i64", "ptr"], returns: "ptr" },
      sb_rec_now: { args: [], returns: "f64" },
      sb_hub_publish: { args: ["ptr", "u32", "u32", "u32", "u32", "u32"], returns: "i32" },
      sb_slot_count: { args: ["ptr"], returns: "u32" },
    } as const)
    const err = new Int32Array(1)
    return {
      abi: l.sb_abi_version(),
      platform: l.sb_platform(),
      nullPointer: l.sb_connect_start(Buffer.from("slotbus-no-such-bus\0"), -1, err),
      errno: err[0],
      clock: typeof l.sb_rec_now(),
      // no JavaScript before the call: node:ffi's own function for a function with a twin of doubles (csrc/doubles.c)
      direct: [String(l.sb_hub_publish).includes("[native code]"), String(l.sb_slot_count).includes("[native code]")],
    }
  },

  "a view over native memory reads it and writes through to it, a plain ArrayBuffer": (rt) => {
    const libc = rt.openLibrary("libc.so.6", {
      malloc: { args: ["i64"], returns: "ptr" },
      memset: { args: ["ptr", "i32", "i64"], returns: "ptr" },
      free: { args: ["ptr"], returns: "void" },
    } as const)
    const p = libc.malloc(64)!
    try {
      libc.memset(p, 7, 64)
      const view = new Int32Array(rt.memoryView(p, 16, 8))
      const before = view[0]
      Atomics.store(view, 1, 42)
      const bytes = new Uint8Array(rt.memoryView(p, 0, 32))
      return { before, after: bytes[20], untouched: bytes[15], shared: bytes.buffer instanceof SharedArrayBuffer }
    } finally {
      libc.free(p)
    }
  },

  "an fd reader settles a read when bytes arrive, later or at once, and cancel leaves the fd open": (rt) =>
    inTempDir(async (dir) => {
      const fifo = join(dir, "bell")
      execFileSync("mkfifo", [fifo])
      const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK) // one fd for both ends, as an eventfd is
      try {
        const reader = rt.fdReader(fd)
        const read = reader.read()
        setTimeout(() => writeSync(fd, "ring"), 50)
        const { value } = await read
        const second = reader.read()
        writeSync(fd, "again")
        const next = await second
        await reader.cancel()
        return [new TextDecoder().decode(value), new TextDecoder().decode(next.value), writeSync(fd, "open")]
      } finally {
        closeSync(fd)
      }
    }),

  // a worker's control socket at a bus's close: the hub wrote its last byte and closed with the worker's own byte
  // unread, so the kernel resets the worker's end (ECONNRESET, EPOLLERR); the hub's byte is still there to read
  "an fd reader gives the bytes sent before a reset, then ends": async (rt) => {
    const libc = rt.openLibrary("libc.so.6", {
      socketpair: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
    } as const)
    const fds = new Int32Array(2)
    const AF_UNIX = 1
    const SOCK_STREAM_NONBLOCK = 1 | 0o4000
    if (libc.socketpair(AF_UNIX, SOCK_STREAM_NONBLOCK, 0, fds) !== 0) throw new Error("socketpair failed")
    const [mine, theirs] = [fds[0]!, fds[1]!]
    try {
      writeSync(mine, "D") // never read: closing `theirs` over it resets `mine`
      writeSync(theirs, "C")
      closeSync(theirs)
      const reader = rt.fdReader(mine)
      const first = await reader.read()
      const end = await reader.read().then(
        (r) => (r.done ? "done" : `more ${new TextDecoder().decode(r.value)}`),
        () => "failed",
      )
      return [new TextDecoder().decode(first.value), end]
    } finally {
      closeSync(mine)
    }
  },

  // the per-host election's: bound on return, a path in use throws, echo both ways, stop(true) closes the
  // connections and unlinks the path, a refused connect calls connectError and rejects
  "unix sockets: listen, a path in use, echo, stop(true), a refused connect": (rt) =>
    inTempDir(async (dir) => {
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
      return {
        again,
        echo,
        closed: true,
        unlinked: !existsSync(path),
        refused: await connectOutcome(rt, { unix: path }),
      }
    }),

  // a server's own limit answered before the handler: Bun.serve's, a bare 413 with no body, for 128 MiB and over
  "serveHttp limits no body of its own: a 3 GiB declared body reaches the handler, and its answer comes back": async (
    rt,
  ) => {
    const server = await rt.serveHttp({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) =>
        new Response(`declared ${req.headers.get("content-length")}`, {
          status: 413,
          headers: { connection: "close" },
        }),
    })
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = netConnect(server.port!, "127.0.0.1")
        let got = ""
        sock.on("data", (d: Buffer) => (got += d.toString("latin1")))
        sock.on("close", () => resolve(got))
        sock.on("error", reject)
        sock.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${3 * 1024 ** 3}\r\n\r\n${"x".repeat(1000)}`)
      })
      return [answer.split(" ")[1], answer.includes("declared 3221225472")]
    } finally {
      await server.stop(true)
    }
  },

  "spawn pipes both ways, with env, cwd and a further fd, and reports the exit code": (rt) =>
    inTempDir(async (box) => {
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
      return {
        wrote,
        flushed,
        out: out.replace(realpathSync(box), "<box>"),
        err: errOut,
        code,
        exitCode: sh.exitCode,
        signal: sh.signalCode,
        fd3: readFileSync(join(box, "fd3"), "utf8"),
      }
    }),

  "a killed child's exit is 128 + its signal's number, its signal named; kill after the exit does nothing": async (
    rt,
  ) => {
    const sleeper = rt.spawn(["sleep", "60"], { stdout: "ignore" })
    sleeper.kill("SIGKILL")
    const killed = [await sleeper.exited, sleeper.exitCode, sleeper.signalCode]
    sleeper.kill()
    return killed
  },

  "a child's stdin whose reader is slow: flush is a promise of the count once the pipe took it all": async (rt) => {
    const slow = rt.spawn(["sh", "-c", "sleep 0.3; head -c 1048576 >/dev/null"], { stdin: "pipe", stdout: "ignore" })
    slow.stdin!.write(new Uint8Array(1 << 20))
    const pending = slow.stdin!.flush()
    const backpressure = [typeof pending, await pending]
    await slow.exited
    return backpressure
  },

  "a child's stdin whose reader is gone: a write does not crash, and flush says what became of it": async (rt) => {
    const gone = rt.spawn(["true"], { stdin: "pipe" })
    await gone.exited
    gone.stdin!.write("too late\n")
    return await Promise.resolve(gone.stdin!.flush()).then(
      () => "flushed",
      () => "rejected",
    )
  },

  "spawn throws at once for a missing program or working directory": (rt) =>
    inTempDir((box) => {
      const refusals: string[] = []
      for (const [command, cwd] of [[["/no/such/program"]], [["sh"], join(box, "no-such-dir")]] as const)
        try {
          rt.spawn([...command], { cwd })
          refusals.push("started")
        } catch (e) {
          refusals.push((e as NodeJS.ErrnoException).code ?? String(e))
        }
      return refusals
    }),

  "this process's stdout sink takes a line and flushes": async (rt) => {
    const sink = rt.stdoutSink()
    const wrote = sink.write(SINK_LINE)
    return [await wrote, await sink.flush()]
  },
}
