// The runtime contract: the host operations slotbus needs and the shapes they take and give, in slotbus's own types
// (no type of Bun's or Node's, so the package's declarations check in an app that has either runtime's types alone).
// Each adapter folder (bun/, node/) gives all of it as one object that `satisfies Runtime`; index.ts picks one.
// Pointers are numbers behind the Pointer brand on both runtimes (callers only pass them on or Number() them).

/** An address in native memory, as the library's functions take and return it. */
export type Pointer = number & { __pointer__: null }

/** The C types of libslotbus's functions (csrc/slotbus.h, lease.h, topic.h). */
export type NativeType = "ptr" | "i32" | "u32" | "i64" | "f64" | "cstring" | "void"
/** One function of a native library: its argument types and its return type. */
export interface NativeFunction {
  readonly args: readonly NativeType[]
  readonly returns: NativeType
}
type Bytes = ArrayBufferView
interface ArgOf {
  ptr: Bytes | Pointer | null
  i32: number
  u32: number
  i64: number | bigint
  f64: number
  cstring: string | Bytes | Pointer | null
  void: undefined
}
interface ReturnOf {
  ptr: Pointer | null
  i32: number
  u32: number
  i64: bigint
  f64: number
  cstring: string | null
  void: undefined
}
/** A loaded library's functions, named as `S` declares them: each called directly, no wrapper in between. */
export type NativeSymbols<S extends Record<string, NativeFunction>> = {
  [K in keyof S]: (
    ...args: S[K]["args"] extends infer A extends readonly NativeType[]
      ? { -readonly [I in keyof A]: ArgOf[A[I]] }
      : never
  ) => ReturnOf[S[K]["returns"]]
}

/** A doorbell being read (Runtime.doorbellReader). */
export interface DoorbellReader {
  /** Stops reading and closes the fd (at once, or as soon as the socket is open). */
  close(): void
}

/** What a promise is now, read without waiting for it. */
export type PromiseState = "pending" | "fulfilled" | "rejected"

/** A connected socket (unix, TCP, or over a connected fd) as the runtime's socket handlers get it. */
export interface Socket<T = undefined> {
  data: T
  /** Writes what the kernel takes now: the bytes taken (fewer, or 0, when its buffer is full; `drain` follows). */
  write(bytes: Uint8Array | string): number
  end(): void
  /** Half-closes: no more is written, the peer's bytes are still read. */
  shutdown(): void
  terminate(): void
  pause(): void
  resume(): void
}

/** What a socket's events call. */
export interface SocketHandlers<T = undefined> {
  open?(s: Socket<T>): void
  data?(s: Socket<T>, bytes: Uint8Array): void
  drain?(s: Socket<T>): void
  /** The peer half-closed (it sends no more). */
  end?(s: Socket<T>): void
  close?(s: Socket<T>, error?: Error): void
  error?(s: Socket<T>, error: Error): void
  /** connect() could not connect (it rejects too). */
  connectError?(s: Socket<T>, error: Error): void
}

/** Where to listen or connect: a unix socket path, or a TCP host and port (0 picks one), with the handlers. */
export interface SocketOptions<T = undefined> {
  unix?: string
  hostname?: string
  port?: number
  data?: T
  allowHalfOpen?: boolean
  socket: SocketHandlers<T>
}

/** A listening socket: `stop(true)` closes its connections too. */
export interface SocketListener<T = undefined> {
  data?: T
  stop(closeConnections?: boolean): void
}
/** A listener on a unix socket path (bound before listen() returns: a path in use throws there). */
export interface UnixListener<T = undefined> extends SocketListener<T> {
  readonly unix: string
}
/** A listener on a TCP port. */
export interface TcpListener<T = undefined> extends SocketListener<T> {
  readonly hostname: string
  readonly port: number
}

/** Where a child's stdin, stdout or stderr goes. */
export type Stdio = "pipe" | "ignore" | "inherit"
/** What spawn takes. */
export interface SpawnOptions {
  stdin?: Stdio
  stdout?: Stdio
  stderr?: Stdio
  /** stdin, stdout, stderr and further fds: a kind or this process's fd the child gets there. */
  stdio?: [Stdio, Stdio, Stdio, ...(Stdio | number)[]]
  cwd?: string
  env?: Record<string, string>
  /** In a session and process group of its own (setsid): a terminal's Ctrl-C, sent to its foreground group, misses it. */
  detached?: boolean
}

/**
 * A byte sink (a child's stdin, this process's stdout): write() takes the bytes and says how many; flush() is the
 * count once the pipe has taken everything written, or a promise of it. A pipe whose reader is gone may reject it
 * (Node: EPIPE) or resolve it (Bun drops what it could not write): a child's end is known from `exited`, never
 * from flush (test/support/runtime/contract-cases.ts holds both).
 */
export interface OutputSink {
  write(chunk: string | Uint8Array): number | Promise<number>
  flush(): number | Promise<number>
}

/**
 * A child process: `exited` settles with its exit code, or 128 + the signal's number; exitCode and signalCode are
 * set once it ended; a piped stdin is a sink, a piped stdout and stderr async-iterable bytes (undefined when not piped).
 */
export interface Process<In extends Stdio = Stdio, Out extends Stdio = Stdio, Err extends Stdio = Stdio> {
  readonly pid: number
  readonly stdin: In extends "pipe" ? OutputSink : undefined
  readonly stdout: Out extends "pipe" ? AsyncIterable<Uint8Array> : undefined
  readonly stderr: Err extends "pipe" ? AsyncIterable<Uint8Array> : undefined
  readonly exited: Promise<number>
  readonly exitCode: number | null
  readonly signalCode: NodeJS.Signals | number | null
  /** Sends `signal` (SIGTERM by default); nothing once it has exited. */
  kill(signal?: number | NodeJS.Signals): void
}

/** An HTTP server (serveHttp's; the HTTP hub's). `Data` is the data of its WebSocket connections, where it has them. */
// biome-ignore lint/correctness/noUnusedVariables: Server<undefined> reads as Bun's did; the data is a WebSocket's
export interface HttpServer<Data = undefined> {
  readonly hostname: string | undefined
  readonly port: number | undefined
  /** Sets the idle timeout of `request`'s connection in seconds (0: none, as for a stream watched for hours). */
  timeout(request: Request, seconds: number): void
  /** The address of the client that sent `request`, or null when it is not known (a unix socket). */
  requestIP(request: Request): { address: string; family: string; port: number } | null
  /**
   * Stops listening; each connection ends once its answers are written (resolves then). `closeActive` ends every
   * open connection at once instead (a stream being watched).
   */
  stop(closeActive?: boolean): Promise<void>
}

/**
 * What serveHttp takes: a unix socket, or a port (0 picks one) on a hostname. The server limits no request body of
 * its own, on either runtime: a handler counts what it reads and refuses past its limit in its own words (a limit
 * of Bun.serve's answered a bare 413, empty, before the handler saw the request). A body the handler does not read
 * is read and dropped after its answer unless that answer says `connection: close`.
 */
export interface ServeOptions {
  unix?: string
  port?: number
  hostname?: string
  /** Seconds a connection may sit idle before it is closed (0: never); `timeout(request, s)` sets one request's. */
  idleTimeout?: number
  fetch(request: Request, server: HttpServer): Response | Promise<Response>
  error?(error: Error): Response | Promise<Response>
}

/** The params a route pattern's `:name` segments give ("/items/:id" → { id: string }). */
export type RouteParams<P extends string> = string extends P
  ? Record<string, string>
  : P extends `${string}:${infer Param}/${infer Rest}`
    ? { [K in Param]: string } & RouteParams<Rest>
    : P extends `${string}:${infer Param}`
      ? { [K in Param]: string }
      : Record<never, never>
/** A route's request: a Request with its pattern's params. */
export interface RouteRequest<P extends string = string> extends Request {
  readonly params: { [K in keyof RouteParams<P>]: RouteParams<P>[K] } & {}
}
type RouteHandler<P extends string, W> = (
  request: RouteRequest<P>,
  server: HttpServer<W>,
) => Response | Promise<Response>
/** A routes table by path pattern, as Bun.serve's `routes` takes it: a handler, one per method, or a static Response. */
export type HttpRoutes<W, R extends string> = {
  [P in R]:
    | Response
    | RouteHandler<P, W>
    | Partial<Record<"GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS", RouteHandler<P, W> | Response>>
}

/**
 * Bun's late write (Bun.serve writes a Response resolved after its request callback's turn, over 16 KiB, in ~15
 * sends): the answer sizes worth working around (a whole answer in that range is sent as a one-chunk stream), or
 * null on a runtime whose server has no such cost.
 */
export interface LateWrite {
  readonly minBytes: number
  readonly maxBytes: number
}

/** A behaviour of the runtime's that slotbus works around, with its canary (test/runtime/quirks.test.ts). */
export interface Quirk {
  /** What the runtime does, in a sentence. */
  readonly what: string
  /** The version it was measured on. */
  readonly seenIn: string
  /** Where it is worked around, and what can go once it is fixed. */
  readonly workaround: string
  /** The measurement, the upstream issue or pull request. */
  readonly see: string
}

/** What the core asks of the runtime's quirks: each a value (null: nothing to work around here). */
export interface Quirks {
  readonly lateWrite: LateWrite | null
  /** node:http's close() closes idle keep-alive connections itself, a next request already sent with them (Bun's). */
  readonly httpCloseDropsIdle: boolean
  /**
   * An uncaught error or unhandled rejection with no listener leaves a process whose top-level await is pending
   * running (Bun's UNCAUGHT_KEEPS_ALIVE); else it ends the process with code 1 (Node's default).
   */
  readonly uncaughtKeepsAlive: boolean
  /** Every quirk of this runtime, by name, as documentation and for its canary. */
  readonly all: Readonly<Record<string, Quirk>>
}

/** The operations, as each adapter gives them (`export const host = { … } satisfies Runtime`). */
export interface Runtime {
  /** Which runtime this is. */
  readonly name: string
  /** What this runtime does that slotbus works around. */
  readonly quirks: Quirks
  /** The library's prebuild for `platform` that the runtime brings along (Bun's file import), or undefined. */
  embeddedLibrary(platform: string): Promise<string | undefined>
  /** Opens the native library at `path` with the functions `symbols` declares; throws when it cannot. */
  openLibrary<S extends Record<string, NativeFunction>>(path: string, symbols: S): NativeSymbols<S>
  /** `length` bytes of native memory at `ptr` + `offset`, as an ArrayBuffer over that memory (no copy). */
  memoryView(ptr: Pointer, offset: number, length: number): ArrayBuffer
  /** A reader of a non-blocking fd (a doorbell, an eventfd) that the event loop polls; the fd stays the caller's. */
  fdReader(fd: number): ReadableStreamDefaultReader<Uint8Array>
  /**
   * Reads a doorbell's read end (a non-blocking unix stream socket, docs/PROTOCOL.md §1.2) as one of the event loop's
   * own sockets, which stay armed: `onWake` gets the number of rings (bytes) each read took. It owns `fd` from here
   * and closes it on `close()` or at the peer's EOF, so the caller hands it a duplicate of the fd it keeps.
   */
  doorbellReader(fd: number, onWake: (rings: number) => void): DoorbellReader
  /**
   * A monotonic clock in ns: only differences between its readings mean anything. Node's reads from 2^32 on, never a
   * small integer (V8 would keep the fields that hold its readings as such until the clock outgrew them).
   */
  nanoseconds(): number
  /**
   * A promise settled after `ms` (any size: no timer overflow at 2^31 ms). A negative or NaN `ms` is 0; Infinity
   * never settles.
   */
  sleep(ms: number): Promise<void>
  /**
   * Blocks the thread for `ms` (any size). A negative or NaN `ms` is 0: it returns at once, neither throwing nor
   * blocking; Infinity blocks for good, as `sleep(Infinity)` never settles.
   */
  sleepSync(ms: number): void
  /** CRC-32 of the bytes (or a string's UTF-8). */
  crc32(data: Uint8Array | string): number
  /** Deep equality; `strict` tells undefined properties and classes apart. */
  deepEquals(a: unknown, b: unknown, strict?: boolean): boolean
  /**
   * The state of a promise now, without waiting. Bun reads it at once; Node cannot, and reads "pending" until a
   * microtask after the first look (callers look again after an `await`, as readyBody does).
   */
  promiseState(p: unknown): PromiseState
  /** A fulfilled promise's value (or the value itself if it is not a promise), read without waiting. */
  promiseValue(p: unknown): unknown
  /** The path of the script the process runs (the entry point), or "/$bunfs/…" inside a compiled executable. */
  mainScript(): string
  /** Everything on stdin, once it ends. */
  stdinBytes(): Promise<Uint8Array>
  /** stdin as a stream of chunks. */
  stdinStream(): AsyncIterable<Uint8Array>
  /** This process's stdout as a sink. */
  stdoutSink(): OutputSink
  /**
   * Listens on a unix socket path (bound before it returns: a path in use throws here, which the per-host election
   * relies on), or on a TCP port (bound once a promise settles on Node, which looks the name up first).
   */
  listen<T = undefined>(options: SocketOptions<T> & { unix: string }): UnixListener<T>
  listen<T = undefined>(options: SocketOptions<T> & { port: number }): TcpListener<T> | Promise<TcpListener<T>>
  /** Connects to a unix socket path or a TCP host and port; a refusal calls connectError and rejects. */
  connect<T = undefined>(options: SocketOptions<T>): Promise<Socket<T>>
  /** A socket over a connected fd (libslotbus's). */
  connectFd<T>(fd: number, data: T, handlers: SocketHandlers<T>): Promise<Socket<T>>
  /** Starts `command` (the program, then its arguments); throws when it cannot be started at all. */
  spawn(command: string[], options?: SpawnOptions): Process
  /** An HTTP server (GET /metrics, the status page, the HTTP hub): a TCP port is bound once a promise settles on Node. */
  serveHttp(options: ServeOptions): HttpServer | Promise<HttpServer>
}
