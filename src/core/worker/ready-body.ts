// A reply's stream body that is already all there — a Response made from a string, bytes or JSON, a stream closed
// in its start() — goes whole: one answer in the slot, no HEAD/DATA/END frames and no ReadableStream on the hub.
// Only what is ready now is read (a read that has not settled within a few microtasks is left running), so a body
// that is truly produced over time starts streaming as soon as it would have.
import { promiseState, promiseValue } from "../../runtime/index.ts"

/**
 * A body read whole, in the pieces its stream gave: copied to where it goes (a slot's arena) without being joined
 * into a buffer of its own first (a 40 KB page comes as two pieces; joining them made and dropped 40 KB more).
 */
export class Pieces {
  constructor(
    readonly parts: readonly Uint8Array[],
    readonly length: number,
  ) {}
  /** Copies them into `to` from `at` on. */
  copyTo(to: Uint8Array, at: number) {
    for (const p of this.parts) {
      to.set(p, at)
      at += p.length
    }
  }
  /** As one array (the piece itself, if there is one). */
  join(): Uint8Array {
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts as Uint8Array[], this.length)
  }
}

/** All of the body (`whole`), or a stream of what was read and then the rest (`rest`). */
export type ReadyBody = { whole: Pieces; rest?: undefined } | { whole?: undefined; rest: ReadableStream<unknown> }

type Read = { done?: boolean; value?: unknown }

// Bun settles a read of a body it holds whole in 1–2 microtasks; a wrapping stream's pull (an async function
// awaiting its source) needs a few more.
const PATIENCE = 4

/** Reads `body` while its reads are already settled, up to `limit` bytes. */
export async function readyBody(body: ReadableStream<unknown>, limit: number): Promise<ReadyBody> {
  const reader = body.getReader()
  const parts: Uint8Array[] = []
  let size = 0
  let next: Promise<Read> | null = reader.read()
  for (;;) {
    for (let i = 0; i < PATIENCE && promiseState(next) === "pending"; i++) await null
    if (promiseState(next) !== "fulfilled") break // still coming, or failed: the stream path tells it
    const r = promiseValue(next) as Read
    // (the lock stays: the stream is over, and releasing it makes a TypeError with a stack for `closed`: 9% of a
    // small fetch-mode answer's CPU)
    if (r.done) return { whole: new Pieces(parts, size) }
    if (!(r.value instanceof Uint8Array)) {
      next = Promise.resolve(r) // not bytes: the stream path reads it and says what is wrong
      break
    }
    parts.push(r.value)
    size += r.value.length
    next = size > limit ? null : reader.read()
    if (next === null) break
  }
  // Streams after all: what was read first, then the read still running, then the rest as it is asked for.
  let held = next
  held?.catch(() => {}) // a failed read fails the stream when it is pulled, not the process before
  return {
    rest: new ReadableStream<unknown>(
      {
        pull: async (c) => {
          const part = parts.shift()
          if (part) return c.enqueue(part)
          const r = await (held ?? reader.read())
          held = null
          if (r.done) c.close()
          else c.enqueue(r.value)
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    ),
  }
}
