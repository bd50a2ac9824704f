// The runtime on Bun: the contract (runtime.ts) kept by Bun's own functions, most of them a reference to Bun's function
// itself, never a wrapper: the clock and the library's functions are called per request.
import type { PromiseState, Runtime } from "../runtime.ts"
import { embeddedLibrary, memoryView, openLibrary } from "./ffi.ts"
import { serveHttp } from "./http.ts"
import { connect, connectFd, listen } from "./net.ts"
import { doorbellReader, fdReader } from "./poll.ts"
import { mainScript, spawn, stdinBytes, stdinStream, stdoutSink } from "./process.ts"
import { BUN_QUIRKS, LATE_WRITE } from "./quirks.ts"

const adapter = {
  name: "bun",
  quirks: { lateWrite: LATE_WRITE, httpCloseDropsIdle: true, uncaughtKeepsAlive: true, all: BUN_QUIRKS },
  embeddedLibrary,
  openLibrary,
  memoryView,
  fdReader,
  doorbellReader,
  nanoseconds: Bun.nanoseconds,
  /** Bun's sleep takes any delay (no 32-bit overflow, unlike setTimeout: quirks.ts, TIMER_OVERFLOW). */
  sleep: Bun.sleep,
  /** Bun's throws on a negative delay and waits ~5 ms on NaN: both are 0 here, as Node's (runtime.ts). */
  sleepSync: (ms: number): void => Bun.sleepSync(ms > 0 ? ms : 0),
  crc32: Bun.hash.crc32,
  deepEquals: Bun.deepEquals,
  promiseState: Bun.peek.status as (p: unknown) => PromiseState,
  promiseValue: Bun.peek,
  mainScript,
  stdinBytes,
  stdinStream,
  stdoutSink,
  listen,
  connect,
  connectFd,
  spawn,
  serveHttp,
} satisfies Runtime

/** The adapter as the contract types it (its declaration names no type of the runtime's own). */
export const host: Runtime = adapter
