// The runtime room: the host operations slotbus needs, in its own names (runtime.ts). Bun's (bun.ts) or Node's
// (node.ts, issue 67), picked once at load; the names below are the chosen module's own functions (no wrapper).
// Nothing outside this folder names Bun's globals, bun:ffi or node:ffi (test/architecture.test.ts).
import { createRequire } from "node:module"
import type * as BunRuntime from "./bun.ts"
import type { Runtime } from "./runtime.ts"

export type { HttpRoutes, HttpServer, OutputSink, Process, Socket, SocketHandlers, SocketListener } from "./bun.ts"
export { BUN_QUIRKS, type Quirk } from "./bun-quirks.ts"
export type {
  DoorbellReader,
  NativeFunction,
  NativeSymbols,
  NativeType,
  Pointer,
  PromiseState,
  Runtime,
} from "./runtime.ts"

/** Which runtime this process is. */
export const runtimeName: "bun" | "node" = process.versions.bun ? "bun" : "node"

/** What Node has no implementation of yet: a clear error when used, not "undefined is not a function". */
function missing(name: string) {
  return () => {
    throw new Error(`slotbus: ${name} is not available on Node yet (issue 67); run this under Bun`)
  }
}

// required, not imported: the pick is synchronous (no top-level await, so `require("slotbus")` works under Bun) and
// only the chosen file runs
const host: typeof BunRuntime =
  runtimeName === "bun"
    ? require("./bun.ts")
    : ({
        stdoutSink: missing("stdout sinks"),
        listen: missing("listen (unix and TCP sockets)"),
        connect: missing("connect (unix and TCP sockets)"),
        spawn: missing("spawn (child processes)"),
        serveHttp: missing("serveHttp (the status and metrics server)"),
        // a literal require, which a bundle for Node (bun build --target=node) takes in; unbundled, Node's ESM has none
        ...(typeof require === "function" ? require("./node.ts") : createRequire(import.meta.url)("./node.ts")),
      } as unknown as typeof BunRuntime)

export const {
  openLibrary,
  memoryView,
  fdReader,
  doorbellReader,
  nanoseconds,
  sleep,
  sleepSync,
  crc32,
  inspect,
  deepEquals,
  promiseState,
  promiseValue,
  mainScript,
  stdinBytes,
  stdinStream,
  stdoutSink,
  listen,
  connect,
  connectFd,
  spawn,
  serveHttp,
} = host

/** The operations as one object, checked against the interface. */
export const runtime: Runtime = host
