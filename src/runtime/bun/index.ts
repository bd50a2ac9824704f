// The runtime on Bun: each operation of runtime.ts, most of them Bun's own function itself (a reference, never a
// wrapper: the clock and the library's functions are called per request).
// bun:ffi is taken from the process, not imported: a build of slotbus for Node (test/support/runtime)
// holds this file too, which only Bun ever runs (index.ts requires it there), and Node refuses a `bun:` import.
import type * as BunFfi from "bun:ffi"
import type { DoorbellReader, NativeFunction, NativeSymbols, Pointer, PromiseState } from "../runtime.ts"

const { dlopen, toArrayBuffer } = process.getBuiltinModule("bun:ffi") as typeof BunFfi

export type {
  FileSink as OutputSink,
  Server as HttpServer,
  Socket,
  SocketHandler as SocketHandlers,
  SocketListener,
  Subprocess as Process,
} from "bun"
/** What Bun.serve's `routes` takes: the shape instrument() wraps. */
export type HttpRoutes<W, R extends string> = import("bun").Serve.Routes<W, R>

/** Opens the library with its functions as `symbols` declares them; the object returned holds them, called as they are. */
export function openLibrary<S extends Record<string, NativeFunction>>(path: string, symbols: S): NativeSymbols<S> {
  return dlopen(path, symbols).symbols as unknown as NativeSymbols<S>
}

/** toArrayBuffer itself (a slot's arena view is made per large answer: no wrapper in between). */
export const memoryView = toArrayBuffer as (ptr: Pointer, offset: number, length: number) => ArrayBuffer

/** The event loop polls `fd` (non-blocking) and settles a read per wake-up; Bun never closes the fd itself. */
export function fdReader(fd: number): ReadableStreamDefaultReader<Uint8Array> {
  return Bun.file(fd).stream().getReader() as ReadableStreamDefaultReader<Uint8Array>
}

export const nanoseconds: () => number = Bun.nanoseconds
/** Bun's sleep takes any delay (no 32-bit overflow, unlike setTimeout: quirks.ts, TIMER_OVERFLOW). */
export const sleep: (ms: number) => Promise<void> = Bun.sleep
export const sleepSync: (ms: number) => void = Bun.sleepSync
export const crc32: (data: Uint8Array | string) => number = Bun.hash.crc32
export const inspect = (value: unknown): string => Bun.inspect(value)
export const deepEquals: (a: unknown, b: unknown, strict?: boolean) => boolean = Bun.deepEquals
export const promiseState: (p: unknown) => PromiseState = Bun.peek.status
export const promiseValue: (p: unknown) => unknown = Bun.peek

export const mainScript = (): string => Bun.main
export const stdinBytes = async (): Promise<Uint8Array> => new Uint8Array(await Bun.stdin.arrayBuffer())
export const stdinStream = (): AsyncIterable<Uint8Array> => Bun.stdin.stream()
export const stdoutSink = () => Bun.stdout.writer()

/**
 * Unix and TCP sockets: Bun's listen and connect, their handler objects as Bun takes them. Node's (node/net.ts) binds
 * a unix socket at once, as Bun's, and a TCP port once its promise settles: callers await a TCP listener.
 */
export const listen: {
  <T = undefined>(
    options: import("bun").TCPSocketListenOptions<T>,
  ): import("bun").TCPSocketListener<T> | Promise<import("bun").TCPSocketListener<T>>
  <T = undefined>(options: import("bun").UnixSocketOptions<T>): import("bun").UnixSocketListener<T>
} = Bun.listen
export const connect = Bun.connect
/** A socket over a connected fd (libslotbus's): Bun.connect takes an fd; its types do not say so. */
export function connectFd<T>(fd: number, data: T, socket: import("bun").SocketHandler<T>) {
  return Bun.connect({ fd, data, socket } as unknown as Parameters<typeof Bun.connect<T>>[0])
}
/**
 * A doorbell's read end as a Bun socket: Bun keeps it in epoll, so a wake is epoll_wait + one recv (Bun.file(fd)'s
 * stream re-armed and read three times: bench/doorbell/pingpong.ts). Bun closes the fd with the socket.
 */
export function doorbellReader(fd: number, onWake: (rings: number) => void): DoorbellReader {
  let closed = false
  let socket: import("bun").Socket<undefined> | undefined
  connectFd<undefined>(fd, undefined, { data: (_s, bytes) => onWake(bytes.length) }).then(
    (s) => (closed ? s.end() : (socket = s)),
    () => {},
  )
  return {
    close() {
      if (closed) return
      closed = true
      socket?.end()
    },
  }
}
/** A child process with pipes, files or inherited stdio. */
export const spawn = Bun.spawn
/**
 * An HTTP server (GET /metrics, the status page); the HTTP hub calls Bun.serve itself (src/http/README.md). Node's
 * (node/http.ts) binds a TCP port once its promise settles: callers await what this returns.
 */
export const serveHttp: <T = undefined, R extends string = never>(
  options: import("bun").Serve.Options<T, R>,
) => import("bun").Server<T> | Promise<import("bun").Server<T>> = Bun.serve
