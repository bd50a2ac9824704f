// A worker's output on its way to the front's stream, line by line (worker-logs.ts's parts): the per-second budget of
// lines and bytes read (LineBudget), the front's stream with its bounded queue (Outlet), and the cutter of a pipe's
// bytes into lines at most maxLineBytes long (LineCutter).

/** One of a worker's output streams. */
export type Stream = "stdout" | "stderr"

export const DECODER = new TextDecoder() // invalid UTF-8 becomes U+FFFD

/**
 * A worker's lines a second: `max` pass in each second (from the first line of it); past that each line is counted
 * and dropped, and the count is said once the second is over (at its next line, or a timer if none comes).
 */
export class LineBudget {
  private left: number
  private bytes = 0
  private windowEnd = 0
  private dropping = 0
  private droppingOn: Stream = "stdout"
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly max: number,
    private readonly maxBytes: number,
    private readonly counts: { lines: number; dropped: number; overBudget: number },
    private readonly notice: (dropped: number, stream: Stream) => void,
  ) {
    this.left = max
  }

  /** Whether lines pass now (a chunk whose lines are all dropped needs no time stamp). */
  get open(): boolean {
    return this.left > 0
  }

  /** Called per chunk read: a second over starts the next (the clock is read per chunk, not per line). */
  tick(): void {
    if (this.max === Infinity && this.maxBytes === Infinity) return
    const now = performance.now()
    if (now < this.windowEnd) return
    this.say()
    this.windowEnd = now + 1000
    this.left = this.max
    this.bytes = 0
  }

  /** Counts a chunk read; returns the ms to stop reading for when the second's bytes are spent, else 0. */
  read(bytes: number): number {
    this.bytes += bytes
    return this.bytes > this.maxBytes ? Math.max(1, this.windowEnd - performance.now()) : 0
  }

  /** Whether a line of `stream` passes; else it is counted as dropped. */
  take(stream: Stream): boolean {
    if (this.left > 0) {
      this.left--
      return true
    }
    if (this.dropping++ === 0) {
      this.droppingOn = stream
      this.timer = setTimeout(() => this.say(), Math.max(0, this.windowEnd - performance.now()))
      this.timer.unref?.()
    }
    this.counts.lines++
    this.counts.dropped++
    this.counts.overBudget++
    return false
  }

  /** The worker's stream ended: what it dropped is said now. */
  end(): void {
    this.say()
  }

  private say() {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (this.dropping === 0) return
    const n = this.dropping
    this.dropping = 0
    this.notice(n, this.droppingOn)
  }
}

/**
 * The front's stdout or stderr with a bound: written while it takes more, else queued up to `max`; past that, every
 * line is dropped until it drains, and then the count is written where they would have been.
 */
export class Outlet {
  private queue: string[] = []
  private queued = 0
  private waiting = false
  private dropping = 0

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly max: number,
    private readonly counts: { dropped: number },
    private readonly notice: (dropped: number) => string,
  ) {}

  write(text: string, lines: number): void {
    if (!this.waiting) {
      if (!this.out.write(text)) this.wait()
      return
    }
    if (this.dropping > 0 || this.queued + text.length > this.max) {
      this.dropping += lines
      this.counts.dropped += lines
    } else {
      this.queue.push(text)
      this.queued += text.length
    }
  }

  private wait() {
    this.waiting = true
    this.out.once("drain", this.drained)
  }

  private readonly drained = () => {
    this.waiting = false
    let text = this.queue.join("")
    if (this.dropping > 0) text += this.notice(this.dropping)
    this.queue = []
    this.queued = 0
    this.dropping = 0
    if (text && !this.out.write(text)) this.wait()
  }
}

/** Splits a byte stream into lines of at most `max` bytes: a longer one is cut (at a character) and its rest skipped. */
export class LineCutter {
  private carry: Uint8Array | null = null
  private skipping = false

  constructor(
    private readonly max: number,
    private readonly onLine: (line: Uint8Array, cut: boolean) => void,
  ) {}

  push(chunk: Uint8Array): void {
    let buf = chunk
    if (this.carry) {
      buf = new Uint8Array(this.carry.length + chunk.length)
      buf.set(this.carry)
      buf.set(chunk, this.carry.length)
      this.carry = null
    }
    let start = 0
    while (start < buf.length) {
      const nl = buf.indexOf(10, start)
      const end = nl < 0 ? buf.length : nl
      if (this.skipping) {
        if (nl < 0) return
        this.skipping = false
      } else if (end - start > this.max) {
        this.onLine(charCut(buf.subarray(start, start + this.max)), true)
        if (nl < 0) return void (this.skipping = true)
      } else if (nl < 0) return void (this.carry = buf.slice(start))
      else this.onLine(withoutCr(buf.subarray(start, nl)), false)
      start = nl + 1
    }
  }

  /** The stream ended: an unterminated last line is a line too. */
  end(): void {
    if (this.carry && this.carry.length > 0) this.onLine(withoutCr(this.carry), false)
    this.carry = null
    this.skipping = false
  }
}

/** `b` without the start of a UTF-8 sequence the cut split at its end. */
function charCut(b: Uint8Array): Uint8Array {
  let k = 0 // continuation bytes at the end
  while (k < 3 && k < b.length && (b[b.length - 1 - k]! & 0xc0) === 0x80) k++
  const lead = b.length - 1 - k
  if (lead < 0) return b
  const c = b[lead]!
  const len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1
  return len > k + 1 ? b.subarray(0, lead) : b
}

const withoutCr = (b: Uint8Array) => (b.length > 0 && b[b.length - 1] === 13 ? b.subarray(0, -1) : b)
