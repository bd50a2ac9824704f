// One side of one hub<->worker connection: the mapped region, its doorbell and the socket that tells of death.
import { writeSync } from "node:fs"
import { availableParallelism } from "node:os"
import { native, type Chan, MSG_WORDS, CANCEL_SEQ_OFFSET, VITALS_OFFSET, VITALS_WORDS } from "../../native/ffi.ts"
import type { Parking } from "./pump.ts"
import { type DoorbellReader, doorbellReader, fdReader, memoryView } from "../../runtime/index.ts"
import { systemError } from "../../kit/index.ts"

/** The region header's `bus processes` word (docs/PROTOCOL.md §2): line 0, offset 40. */
const BUS_PROCESSES_OFFSET = 40
/** The parked lines (§2): worker_parked at 320, its CPU word at 324; hub_parked at 384, its CPU word at 388 (§5.1). */
const PARKED_LINES_OFFSET = 320
const CPU_WORD = { worker: 1, hub: 17 } // Uint32 indexes from PARKED_LINES_OFFSET
/** CPUs this process may run on: more processes than this on one bus and a side that spins takes a handler's CPU. */
const CPUS = availableParallelism()
// JavaScriptCore counts an ArrayBuffer's whole length as heap, external ones over shared memory included, and
// collects the less often the larger it thinks the heap is: views of whole 64 MiB arenas made it think a worker
// held 2 GiB and collect a few times a minute, while the real garbage grew to hundreds of MB and was faulted in
// afresh (docs/perf/real-work.md). So a view is as long as what it is for, in powers of two from ARENA_VIEW_MIN,
// and only views up to ARENA_VIEW_KEPT (a 1 MiB body and its head) are kept for the next message.
const ARENA_VIEW_MIN = 64 * 1024
const ARENA_VIEW_KEPT = 2 * 1024 * 1024

export class Channel implements Parking {
  readonly msg: Uint32Array
  /** The hub's cancel_seq in the region (docs/PROTOCOL.md §3): read only while the channel is open. */
  readonly cancelSeq: Uint32Array
  readonly slotCount: number
  readonly arenaSize: number
  readonly peerPid: number
  readonly peerUid: number
  private readonly base: number
  private readonly arenasOff: number
  private readonly arenas: (Uint8Array | undefined)[]
  private readonly slotHeaders: Uint32Array
  private readonly processes: Uint32Array
  private readonly cpuWords: Uint32Array
  private readonly myCpu: number
  private readonly theirCpu: number
  private cpuSaid = -1
  /** The worker's vitals report, header line 8 (docs/PROTOCOL.md §2): vitals-block.ts's, only while open. */
  readonly vitalsLine: Uint32Array
  private readers: { cancel(): Promise<void> }[] = []
  private bell: DoorbellReader | undefined
  private open = true
  private holds = 0
  private readersReleased = false

  /** `side`: which end of the connection this process is. */
  constructor(
    readonly ptr: Chan,
    side: "hub" | "worker",
  ) {
    this.msg = new Uint32Array(memoryView(native.sb_last_msg(ptr)!, 0, MSG_WORDS * 4))
    this.slotCount = native.sb_slot_count(ptr)
    this.arenaSize = native.sb_arena_size(ptr)
    this.peerPid = native.sb_peer_pid(ptr)
    this.peerUid = native.sb_peer_uid(ptr)
    this.base = Number(native.sb_region(ptr))
    this.cancelSeq = new Uint32Array(memoryView(this.base as never, CANCEL_SEQ_OFFSET, 4))
    this.processes = new Uint32Array(memoryView(this.base as never, BUS_PROCESSES_OFFSET, 4))
    this.cpuWords = new Uint32Array(memoryView(this.base as never, PARKED_LINES_OFFSET, 128))
    this.myCpu = CPU_WORD[side]
    this.theirCpu = CPU_WORD[side === "hub" ? "worker" : "hub"]
    this.vitalsLine = new Uint32Array(memoryView(this.base as never, VITALS_OFFSET, VITALS_WORDS * 4))
    this.arenasOff = native.sb_arena_offset(ptr, 0, 0) // docs/PROTOCOL.md §2: arenas follow, 2 per slot
    this.arenas = new Array(this.slotCount * 2)
    // docs/PROTOCOL.md §2: 64-byte slot headers at SLOTS = align64(1024 + 8·ring_size)
    let ring = 1
    while (ring < this.slotCount) ring *= 2
    const slotsOff = Math.ceil((1024 + 8 * ring) / 64) * 64
    this.slotHeaders = new Uint32Array(memoryView(this.base as never, slotsOff, 64 * this.slotCount))
  }

  /** A stream's credit (its slot header's `limit`, docs/PROTOCOL.md §9.1), to see it move; 0 once closed. */
  streamLimit(slot: number): number {
    return this.open ? this.slotHeaders[slot * 16 + 11]! : 0
  }

  get isOpen() {
    return this.open
  }

  /**
   * Whether the peer's process has exited, or its pid is another process's now, though the socket stays open (a
   * child it forked holds it: no EOF comes, docs/PROTOCOL.md §1). A kill(pid, 0) and a /proc read: for a timer's tick.
   */
  peerGone(): boolean {
    return this.open && native.sb_peer_gone(this.ptr) === 1
  }

  /** The processes on this host at work for the bus, hub included, as the hub last told (0: not told); 0 once closed. */
  get busProcesses(): number {
    return this.open ? this.processes[0]! : 0
  }

  /** The hub tells the worker how many processes on this host are at work for the bus (docs/PROTOCOL.md §2). */
  tellProcesses(n: number) {
    if (this.open) this.processes[0] = n
  }

  /** More processes are at work for the bus on this host than there are CPUs: a side that spins takes a handler's CPU. */
  get crowded(): boolean {
    return this.open && this.processes[0]! > CPUS
  }

  /**
   * The start of the request (response = 0) or response (1) arena of a slot, a view into shared memory at least
   * `need` bytes long (the whole arena, `arenaSize`, when `need` is more). Used at once: a view longer than
   * ARENA_VIEW_KEPT is made for this one use.
   */
  arena(slot: number, response: 0 | 1, need: number): Uint8Array {
    const i = slot * 2 + response
    const kept = this.arenas[i]
    if (kept !== undefined && kept.length >= need) return kept
    let len = ARENA_VIEW_MIN
    while (len < need) len *= 2
    len = Math.min(len, this.arenaSize)
    // No finalizer: the memory is the channel's, unmapped only by close().
    const view = new Uint8Array(memoryView(this.base as never, native.sb_arena_offset(this.ptr, slot, response), len))
    if (len <= ARENA_VIEW_KEPT) this.arenas[i] = view
    return view
  }

  /**
   * A fresh ArrayBuffer over `len` bytes at `off` in a slot's arena, for a view handed to user code: its owner
   * detaches it (`transfer(0)`) when the slot moves on, so a stale view reads empty instead of the next message.
   */
  lend(slot: number, response: 0 | 1, off: number, len: number): ArrayBuffer {
    if (slot >= this.slotCount || off + len > this.arenaSize)
      throw new RangeError(`slot ${slot} has no ${len} bytes at ${off}`)
    return memoryView(this.base as never, this.arenasOff + (2 * slot + response) * this.arenaSize + off, len)
  }

  park(): number {
    return native.sb_park(this.ptr)
  }
  unpark() {
    native.sb_unpark(this.ptr)
  }

  /** Publishes this side's CPU in its CPU word (docs/PROTOCOL.md §5.1), storing only a change. */
  noteCpu(cpu: number) {
    if (cpu === this.cpuSaid || cpu < 0 || !this.open) return
    this.cpuSaid = cpu
    this.cpuWords[this.myCpu] = cpu + 1
  }

  /** The CPU the peer last published, -1 if it did not (§5.1). */
  peerCpu(): number {
    return this.open ? this.cpuWords[this.theirCpu]! - 1 : -1
  }

  /**
   * Calls onRing with the number of rings (a byte each, docs/PROTOCOL.md §1.2) each time the peer rings this side's
   * doorbell. The runtime reads a duplicate of the fd, and closes it itself: the channel's own fd is sb_close's.
   */
  listenDoorbell(onRing: (count: number) => void) {
    const fd = native.sb_fd_dup(native.sb_doorbell_fd(this.ptr))
    if (fd < 0) throw systemError("cannot watch the doorbell", fd)
    this.bell = doorbellReader(fd, (rings) => {
      if (this.open) onRing(rings)
    })
  }

  /**
   * Calls onControl with the control bytes the peer sent (docs/PROTOCOL.md §1), one read's worth at a time,
   * and onGone once when the peer's end of the socket closes (exit, crash, kill -9, or close()).
   */
  watchPeer(onControl: (bytes: Uint8Array) => void, onGone: () => void) {
    this.readLoop(native.sb_socket_fd(this.ptr), onControl, onGone)
  }

  /** Sends a control byte; false if the peer is already gone. */
  sendControl(byte: number): boolean {
    try {
      return this.open && writeSync(native.sb_socket_fd(this.ptr), new Uint8Array([byte])) === 1
    } catch {
      return false
    }
  }

  private readLoop(fd: number, onChunk: (bytes: Uint8Array) => void, onEnd: () => void) {
    // Bun polls the non-blocking fd on its own event loop; the fd stays ours (Bun does not close it).
    const reader = fdReader(fd)
    this.readers.push(reader)
    const next = (): void => {
      reader.read().then(
        (r) => {
          if (!this.open) return
          if (r.done) return onEnd()
          onChunk(r.value)
          // One read per event-loop turn: a peer writing without pause cannot keep this loop from timers and I/O.
          if (this.open) setImmediate(next)
        },
        () => this.open && onEnd(),
      )
    }
    next()
  }

  /** Keeps the region's address range mapped past close() while a handler may still hold views into it. */
  hold() {
    this.holds++
  }
  release() {
    if (--this.holds === 0) this.unmapIfUnused()
  }

  /** The peer sees EOF at once; the memory goes when no view is held and Bun has let go of the fds. */
  close() {
    if (!this.open) return
    this.open = false
    native.sb_disconnect(this.ptr)
    this.arenas.fill(undefined)
    this.bell?.close()
    // Close the fds only once Bun has let go of them, so it never touches a reused fd number.
    const released = this.readers.map((r) => r.cancel().catch(() => {}))
    Promise.all(released).then(() => {
      this.readersReleased = true
      this.unmapIfUnused()
    })
  }

  private unmapIfUnused() {
    if (this.open || !this.readersReleased) return
    if (this.holds > 0) return native.sb_detach(this.ptr) // memory and fds go now; stale views read zeros
    this.readersReleased = false // once
    native.sb_close(this.ptr)
  }
}
