// Length-prefixed frames over a Bun stream socket (unix or TCP): [u32 LE length][bytes], in both directions.
import type { Socket } from "bun"

/** Splits a byte stream into frames; `onFrame` gets a view that is only valid during the call. */
export class FrameReader {
  private buf = new Uint8Array(64 * 1024)
  private start = 0
  private end = 0

  constructor(private readonly onFrame: (frame: Uint8Array) => void) {}

  push(chunk: Uint8Array) {
    if (this.start === this.end) {
      // Nothing buffered: take whole frames straight from the chunk, keep only the tail.
      const used = this.frames(chunk, 0, chunk.length)
      if (used < chunk.length) this.append(chunk.subarray(used))
      return
    }
    this.append(chunk)
    this.start = this.frames(this.buf, this.start, this.end)
    if (this.start === this.end) this.start = this.end = 0
  }

  private frames(b: Uint8Array, at: number, end: number): number {
    while (end - at >= 4) {
      const len = (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0
      if (end - at - 4 < len) break
      this.onFrame(b.subarray(at + 4, at + 4 + len))
      at += 4 + len
    }
    return at
  }

  private append(chunk: Uint8Array) {
    const live = this.end - this.start
    if (this.end + chunk.length > this.buf.length) {
      const next =
        live + chunk.length > this.buf.length
          ? new Uint8Array(Math.max(live + chunk.length, this.buf.length * 2))
          : this.buf
      next.set(this.buf.subarray(this.start, this.end))
      this.buf = next
      this.start = 0
      this.end = live
    }
    this.buf.set(chunk, this.end)
    this.end += chunk.length
  }
}

/** `payload` with its length in front: one frame. */
export function frameOf(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(4 + payload.length)
  new DataView(frame.buffer).setUint32(0, payload.length, true)
  frame.set(payload, 4)
  return frame
}

/** Writes frames, queueing whatever the socket does not take at once until its drain callback. */
export class FrameWriter {
  private readonly queue: Uint8Array[] = []

  constructor(private readonly socket: Socket<unknown>) {}

  send(payload: Uint8Array) {
    const frame = frameOf(payload)
    if (this.queue.length > 0) this.queue.push(frame)
    else this.write(frame)
  }

  /** Call from the socket's drain handler. */
  flush() {
    while (this.queue.length > 0) {
      const b = this.queue.shift()!
      if (!this.write(b, true)) return
    }
  }

  private write(b: Uint8Array, front = false): boolean {
    const n = Math.max(0, this.socket.write(b))
    if (n === b.length) return true
    if (front) this.queue.unshift(b.subarray(n))
    else this.queue.push(b.subarray(n))
    return false
  }
}
