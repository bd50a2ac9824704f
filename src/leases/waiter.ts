// The claims of one contest waiting in this process, and the one C thread that wakes them (sbl_waiter_*): it
// sleeps on the futexes of the waited entries only and rings one eventfd that Bun's event loop watches; each
// ring wakes the first waiter of each entry that became claimable (first come, first served within a process).
import { ProtocolError } from "../errors.ts"
import { leaseNative as native, native as busNative, type ContestPtr } from "../native/ffi.ts"
import { ContestClosedError } from "./errors.ts"
import { type DoorbellReader, doorbellReader } from "../runtime/index.ts"

/** What the waiters ask of their contest. */
export interface WaiterHost {
  readonly name: string
  /** The native contest while it is open in this process; null once closed. */
  open(): ContestPtr | null
  /** The native contest until it is freed (after close, while the thread is being stopped). */
  ptr(): ContestPtr | null
  /** The thread has stopped and no claim waits: the contest may be freed now. */
  idle(): void
}

interface Waiter {
  wake: () => void
}

export class Waiters {
  private readonly waiting = new Map<number, Set<Waiter>>() // entry → its waiters, first come first woken
  private readonly armed = new Set<number>()
  private readonly readyBuf = new Uint32Array(256)
  private waitCount = 0
  private waiterFd = -1
  private waiterReader?: DoorbellReader
  private waiterStopping?: Promise<void>

  constructor(private readonly host: WaiterHost) {}

  /** No claim waits and no thread runs or is being stopped: nothing can touch the native contest. */
  get idle(): boolean {
    return this.waitCount === 0 && this.waiterFd < 0 && !this.waiterStopping
  }

  /**
   * Sleeps until the entry may be claimable, the time is up, or abort. However many claims wait, this
   * process has one C thread for the contest (sbl_waiter_*), sleeping on the futexes of the waited entries
   * only; it rings one eventfd, and each ring wakes the first waiter of each entry that became claimable.
   */
  async waitFor(entry: number, ms: number, signal?: AbortSignal): Promise<void> {
    while (this.waiterStopping) await this.waiterStopping
    const p = this.host.open()
    if (!p) throw new ContestClosedError(`contest "${this.host.name}" is closed in this process; open it again`)
    this.startWaiter(p)
    let wake!: () => void
    const woken = new Promise<void>((resolve) => (wake = resolve))
    const waiter: Waiter = { wake }
    let queue = this.waiting.get(entry)
    if (!queue) this.waiting.set(entry, (queue = new Set()))
    queue.add(waiter)
    this.waitCount++
    this.arm(entry)
    const timer = ms === Infinity ? undefined : setTimeout(wake, ms)
    signal?.addEventListener("abort", wake, { once: true })
    try {
      await woken
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener("abort", wake)
      queue.delete(waiter)
      if (queue.size === 0) {
        if (this.waiting.get(entry) === queue) this.waiting.delete(entry)
        this.disarm(entry)
      } else {
        this.arm(entry) // the others keep waiting: hear the next release too
      }
      if (--this.waitCount === 0) setImmediate(() => this.stopWaiterIfIdle())
    }
    signal?.throwIfAborted()
    if (!this.host.open()) throw new ContestClosedError(`contest "${this.host.name}" was closed while waiting`)
  }

  /** The contest closed: every waiting claim wakes (and rejects). */
  wakeAll() {
    for (const queue of this.waiting.values()) for (const w of queue) w.wake()
  }

  /** @internal for tests: claims waiting in this process, and whether its waiter thread runs */
  state(): { waiting: number; thread: boolean } {
    return { waiting: this.waitCount, thread: this.waiterFd >= 0 }
  }

  private arm(entry: number) {
    const p = this.host.open()
    if (this.armed.has(entry) || !p || this.waiterFd < 0) return
    this.armed.add(entry)
    native.sbl_waiter_arm(p, entry)
  }

  private disarm(entry: number) {
    const p = this.host.ptr()
    if (!this.armed.delete(entry) || !p || this.waiterFd < 0) return
    native.sbl_waiter_disarm(p, entry)
  }

  private startWaiter(p: ContestPtr) {
    if (this.waiterFd >= 0) return
    const fd = native.sbl_waiter_fd(p)
    if (fd < 0) throw new ProtocolError(`contest "${this.host.name}": could not start the waiter thread (errno ${-fd})`)
    this.waiterFd = fd
    // the runtime's socket reads (and closes) a copy of the thread's doorbell fd (docs/PROTOCOL.md §1.2)
    const bell = busNative.sb_fd_dup(fd)
    if (bell < 0) {
      native.sbl_waiter_stop(p)
      this.waiterFd = -1
      throw new ProtocolError(`contest "${this.host.name}": could not watch the waiter thread (errno ${-bell})`)
    }
    this.waiterReader = doorbellReader(bell, () => this.wakeReady())
  }

  // Entries the waiter thread found claimable (it disarmed them): wake the first waiter of each.
  private wakeReady() {
    const p = this.host.ptr()
    if (!p || this.waiterFd < 0) return
    for (let n = this.readyBuf.length; n === this.readyBuf.length; ) {
      n = native.sbl_waiter_ready(p, this.readyBuf, this.readyBuf.length)
      for (let k = 0; k < n; k++) {
        const entry = this.readyBuf[k]!
        this.armed.delete(entry)
        const queue = this.waiting.get(entry)
        const first = queue?.values().next().value
        if (first) {
          queue!.delete(first)
          first.wake()
        }
      }
    }
  }

  // Off the hand-over path, on a later turn of the event loop: the runtime closes its copy of the doorbell, then
  // the C side joins the thread and closes it; the contest is freed only after that.
  private stopWaiterIfIdle() {
    if (this.waitCount > 0 || this.waiterFd < 0 || this.waiterStopping) return
    this.waiterReader!.close()
    this.waiterReader = undefined
    this.waiterStopping = Promise.resolve().then(() => {
      const p = this.host.ptr()
      if (p) native.sbl_waiter_stop(p)
      this.waiterFd = -1
      this.armed.clear()
      this.waiterStopping = undefined
      this.host.idle()
    })
  }
}
