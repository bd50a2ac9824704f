// The runtime room: the host operations slotbus needs, in its own names (runtime.ts). Bun's (bun/) or Node's
// (node/, issue 67), picked once at load; the names below are the chosen module's own functions (no wrapper).
// Nothing outside this folder names Bun's globals, bun:ffi or node:ffi (test/architecture.test.ts).
import { createRequire } from "node:module"
import type { Runtime } from "./runtime.ts"

export { FFI_WARNING_ENV, UnsupportedRuntimeError } from "./errors.ts"
export { arrived, closeWhenLast, closing, HOP_BY_HOP, incoming, requestListener } from "./fetch-listener.ts"
export { ClientGone, type HeadAnswer, headListener, type RequestHead } from "./head-listener.ts"
export {
  hostName,
  hostProblem,
  isLoopbackName,
  pathStart,
  refuseMethod,
  refuseServed,
  targetPath,
} from "./request-target.ts"
export type {
  DoorbellReader,
  HttpRoutes,
  HttpServer,
  LateWrite,
  NativeFunction,
  NativeSymbols,
  NativeType,
  OutputSink,
  Pointer,
  Process,
  PromiseState,
  Quirk,
  Quirks,
  RouteRequest,
  Runtime,
  ServeOptions,
  Socket,
  SocketHandlers,
  SocketListener,
  SocketOptions,
  SpawnOptions,
  TcpListener,
  UnixListener,
} from "./runtime.ts"

const unbundled = /\/runtime\/index\.(ts|js)$/.exec(import.meta.url)

// required, not imported: the pick is synchronous (no top-level await, so `require("slotbus")` works under Bun) and
// only the chosen adapter runs. A runtime is a folder of its own and one line here. The two literal requires are
// what a bundler follows; in dist/ (the build for Node) scripts/dist.ts makes Node's require its .js and Bun's the
// error nodeBuildUnderBun, so a bundle for Node (bun build --target=node, esbuild) holds no path into bun/.
const host: Runtime = (
  process.versions.bun
    ? require("./bun/index.ts")
    : // Unbundled (index.ts with types stripped, or the package's dist/runtime/index.js), node/index.ts or .js beside
      // this file; in a bundle for Node, the literal require, which the bundler takes in.
      // Not `typeof require`: `node -e` and the REPL have a global require, resolving from the working directory.
      unbundled
      ? createRequire(import.meta.url)(`./node/index.${unbundled[1]}`)
      : require("./node/index.ts")
).host

/** Which runtime this process is. */
export const runtimeName: string = host.name
/** What adds a package to an app on this runtime, for the messages that say to ("bun add", "npm install"). */
export const addPackage: string = host.name === "bun" ? "bun add" : "npm install"

/** The workarounds the core reads of this runtime (null: nothing to work around here). */
export const quirks = host.quirks

export const {
  embeddedLibrary,
  openLibrary,
  memoryView,
  fdReader,
  doorbellReader,
  nanoseconds,
  sleep,
  sleepSync,
  crc32,
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

/** The operations as one object. */
export const runtime: Runtime = host
