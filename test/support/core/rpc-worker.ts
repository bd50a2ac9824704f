// A worker exposing functions for the RPC tests (test/core/rpc/rpc.test.ts); its API type is what the hub's typing
// is checked against. Usage: bun test/support/core/rpc-worker.ts <bus-name> [--with-handler]
// Prints "ready" once connected; "waiting <id>" when wait(id) starts and "aborted <id> <reason name>" when its
// signal aborts. With --with-handler, requests that are not RPC calls get "plain <path>".
import { SlotWorker, withSignal } from "../../../src/index.ts"

let kept: Uint8Array | null = null
const hang = import.meta.main && process.argv.includes("--hang")

export const api = {
  count: 0,
  add(a: number, b: number): number {
    return a + b
  },
  async echo<T>(value: T): Promise<T> {
    return value
  },
  /** The value back after `ms`: an answer no spin of the caller's catches in its turn. */
  async echoLater<T>(value: T, ms: number): Promise<T> {
    await Bun.sleep(ms)
    return value
  },
  /** Sums the bytes, to show a typed array arrived whole. */
  sum(bytes: Uint8Array): number {
    let s = 0
    for (const b of bytes) s += b
    return s
  },
  /** n bytes of test/support/helpers.ts's pattern(n, seed). */
  pattern(n: number, seed = 0): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255
    return out
  },
  /** Keeps the argument past its call: it must stay intact once the slot it came in carries other calls. */
  keep(bytes: Uint8Array): number {
    kept = bytes
    return bytes.length
  },
  keptSum(): number {
    return kept ? api.sum(kept) : -1
  },
  inc(): number {
    return ++this.count
  },
  pid(): number {
    return process.pid
  },
  whoAnswers(id: string): Promise<number> {
    if (!hang) return Promise.resolve(process.pid)
    console.log(`holding ${id}`)
    return new Promise(() => {})
  },
  async tagged(i: number): Promise<{ i: number; pid: number }> {
    await Bun.sleep(1)
    return { i, pid: process.pid }
  },
  fail(message: string): never {
    throw new RangeError(message)
  },
  async failLater(message: string): Promise<never> {
    await Bun.sleep(1)
    throw new TypeError(message)
  },
  throwValue(value: unknown): never {
    throw value
  },
  /** An array of `length` with one element, at its end: all holes but one. */
  sparse(length: number): unknown[] {
    const out: unknown[] = []
    out[length - 1] = "last"
    return out
  },
  unclonable(): () => void {
    return () => {}
  },
  nothing(): void {},
  wait: withSignal((signal: AbortSignal, id: string): Promise<string> => {
    console.log(`waiting ${id}`)
    return new Promise((resolve) =>
      signal.addEventListener("abort", () => {
        console.log(`aborted ${id} ${(signal.reason as Error)?.name}`)
        resolve("too late")
      }),
    )
  }),
}
export type Api = typeof api

if (import.meta.main) {
  const [name, ...flags] = process.argv.slice(2)
  if (!name) throw new Error("usage: rpc-worker.ts <bus-name> [--with-handler]")
  const worker = await SlotWorker.expose(
    name,
    api,
    flags.includes("--with-handler") ? { handler: (req) => `plain ${req.path}` } : {},
  )
  console.log("ready")
  const closed = await worker.closed
  console.log(`closed ${closed.reason}`)
  process.exit(0)
}
