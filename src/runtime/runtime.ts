// The host operations slotbus needs, in its own names: what src/runtime/bun/index.ts and node.ts give (issue 67). Pointers
// are numbers behind the Pointer brand on both runtimes (callers only pass them on or Number() them); nothing here is
// a Bun type except the socket and process handles, which runtime/bun/index.ts names (node.ts gives the shape slotbus uses
// of them, or a clear error).

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

/** The operations, as the runtime module exports them (runtime/index.ts checks its module against this). */
export interface Runtime {
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
  /** A monotonic clock in ns since the process started. */
  nanoseconds(): number
  /** A promise settled after `ms` (any size: no timer overflow at 2^31 ms). */
  sleep(ms: number): Promise<void>
  /** Blocks the thread for `ms`. */
  sleepSync(ms: number): void
  /** CRC-32 of the bytes (or a string's UTF-8). */
  crc32(data: Uint8Array | string): number
  /** A value as a developer reads it in a log. */
  inspect(value: unknown): string
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
}
