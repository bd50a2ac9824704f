// NDJSON framing over a byte stream with a bound: a line longer than `maxBytes` is refused, never buffered.
const decoder = new TextDecoder()

export class LineSplitter {
  private parts: Uint8Array[] = []
  private partBytes = 0

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: string) => void,
  ) {}

  /** Bytes of the incomplete line held so far. */
  get partialBytes(): number {
    return this.partBytes
  }

  /** Feeds a chunk; false when a line went past maxBytes (the stream should be dropped). */
  push(chunk: Uint8Array): boolean {
    let start = 0
    if (this.partBytes > 0) {
      const nl = chunk.indexOf(10)
      if (nl < 0) return this.keep(chunk)
      if (this.partBytes + nl > this.maxBytes) return false
      const whole = new Uint8Array(this.partBytes + nl)
      let at = 0
      for (const p of this.parts) {
        whole.set(p, at)
        at += p.length
      }
      whole.set(chunk.subarray(0, nl), at)
      this.parts = []
      this.partBytes = 0
      if (!this.emit(decoder.decode(whole))) return false
      start = nl + 1
    }
    const last = chunk.lastIndexOf(10)
    if (last >= start) {
      // One decode for every complete line in the chunk: far cheaper than one per line.
      const lines = decoder.decode(chunk.subarray(start, last)).split("\n")
      for (const line of lines) if (!this.emit(line)) return false
      start = last + 1
    }
    return start < chunk.length ? this.keep(chunk.subarray(start)) : true
  }

  private keep(rest: Uint8Array): boolean {
    if (this.partBytes + rest.length > this.maxBytes) return false
    this.parts.push(rest.slice())
    this.partBytes += rest.length
    return true
  }

  private emit(line: string): boolean {
    if (line.length > this.maxBytes / 3 && Buffer.byteLength(line) > this.maxBytes) return false
    if (line.length > 0 && line !== "\r") this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line)
    return true
  }
}
