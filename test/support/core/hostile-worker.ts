// A worker that breaks the protocol on purpose, to show the hub survives it. Usage:
//   bun test/support/core/hostile-worker.ts <bus-name> <scenario> <seed> <claim-count> [--via-slotworker]
// Attaches (with native.sb_connect, or through a SlotWorker whose handlers never answer), claims
// <claim-count> requests so they are in flight, prints "claimed <n>", corrupts its region as <scenario>
// says, rings the hub's doorbell, and prints "hub hung up" once the hub drops it (or "hub kept me" after
// 1.5 s), then exits.
import { dlopen, FFIType, toArrayBuffer, type Pointer } from "bun:ffi"
import { readSync, writeSync } from "node:fs"
import { loadNative } from "../../../src/native/ffi.ts"
import { SlotWorker } from "../../../src/index.ts"
import { doorbellCandidates } from "../fds.ts"

const native = await loadNative()

const [name, scenario, seedArg, claimArg, ...flags] = process.argv.slice(2)
if (!name || !scenario) throw new Error("usage: hostile-worker.ts <bus-name> <scenario> <seed> <claim-count>")
const seed = Number(seedArg ?? 1)
const want = Number(claimArg ?? 8)
const viaSlotWorker = flags.includes("--via-slotworker")

// Region offsets, docs/PROTOCOL.md §2 (as u32 word indices where noted).
const CQ_TAIL = 192 / 4,
  CQ_HEAD = 256 / 4,
  WORKER_PARKED = 320 / 4,
  HUB_PARKED = 384 / 4
const SLOT = { state: 0, status: 5, flags: 6, respHead: 7, respBody: 8 } as const
const DONE = 4

function mulberry32(a: number) {
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = mulberry32(seed)

// ---- attach ----
const before = doorbellCandidates()
let ptr: Pointer
let claimed: number[] = []
let worker: SlotWorker | undefined
if (viaSlotWorker) {
  let n = 0
  worker = await SlotWorker.connect(name, () => {
    n++
    return new Promise(() => {})
  })
  // The channel is private to SlotWorker; a hostile process can reach it anyway.
  ptr = (worker as unknown as { conns: { chan: { ptr: Pointer } } }).conns.chan.ptr
  console.log(`ready ${process.pid}`)
  const deadline = performance.now() + 5000
  while (n < want && performance.now() < deadline) await Bun.sleep(1)
  claimed = Array.from({ length: n }, (_, i) => i) // SlotBus claims slots 0, 1, 2, … in order
} else {
  const err = new Int32Array(1)
  const p = native.sb_connect(Buffer.from(name + "\0"), -1, 5000, err)
  if (!p) throw new Error(`sb_connect failed: ${err[0]}`)
  ptr = p as Pointer
  console.log(`ready ${process.pid}`)
}
const myBell = native.sb_doorbell_fd(ptr)
const sock = native.sb_socket_fd(ptr)
// The hub's doorbell is not exposed; it is among the doorbell-like fds that appeared while attaching.
const hubBells = [...doorbellCandidates()].filter((fd) => !before.has(fd) && fd !== myBell && fd !== sock)
if (hubBells.length === 0) throw new Error("cannot find the hub's doorbell among my fds")

const size = native.sb_region_size(ptr)
const region = new Uint8Array(toArrayBuffer(native.sb_region(ptr)!, 0, size))
const words = new Uint32Array(region.buffer, region.byteOffset, 1024 / 4)
const slotCount = words[3]!,
  ringSize = words[4]!,
  arenaSize = words[5]!
const align = (n: number, a: number) => Math.ceil(n / a) * a
const SLOTS = align(1024 + 8 * ringSize, 64)
const ARENAS = align(SLOTS + 64 * slotCount, 4096)
const cqBase = (1024 + 4 * ringSize) / 4
const slotWords = (i: number) => new Uint32Array(region.buffer, region.byteOffset + SLOTS + 64 * i, 16)

// ---- claim requests the way a worker does, so they are in flight ----
if (!viaSlotWorker) {
  const deadline = performance.now() + 5000
  while (claimed.length < want && performance.now() < deadline) {
    const slot = native.sb_worker_poll(ptr)
    if (slot >= 0) claimed.push(slot)
    else if (slot === -1) native.sb_wait(ptr, 10, 0)
    else throw new Error(`sb_worker_poll: ${slot}`)
  }
}
console.log(`claimed ${claimed.length}`)

// ---- corrupt ----
function ring() {
  const one = new Uint8Array([1]) // a ring is one byte (docs/PROTOCOL.md §1.2)
  for (const fd of hubBells)
    try {
      writeSync(fd, one)
    } catch {} // buffer full: rung already
}

/** Push `slot` on the completion ring as a (misbehaving) worker would: tagged with its position (docs/PROTOCOL.md
 * §4) unless `raw`, when `slot` is stored as the whole entry. */
function pushCq(slot: number, raw = false) {
  const tail = Atomics.load(words, CQ_TAIL)
  Atomics.store(
    new Uint32Array(region.buffer, region.byteOffset, ARENAS / 4),
    cqBase + (tail & (ringSize - 1)),
    raw ? slot >>> 0 : (((tail + 1) << 12) | slot) >>> 0,
  )
  Atomics.store(words, CQ_TAIL, (tail + 1) >>> 0)
}

/** A slot's response fields as a worker completing it writes them (then `edit`), state DONE; nothing pushed. */
function markDone(slot: number, edit: (s: Uint32Array, gen: number) => void) {
  const s = slotWords(slot)
  const gen = Atomics.load(s, SLOT.state) >>> 8
  s[SLOT.status] = 200
  s[SLOT.flags] = 0
  s[SLOT.respHead] = 0
  s[SLOT.respBody] = 0
  Atomics.store(s, SLOT.state, ((gen << 8) | DONE) >>> 0)
  edit(s, gen)
}

function completeAs(slot: number, edit: (s: Uint32Array, gen: number) => void) {
  markDone(slot, edit)
  pushCq(slot)
}

/** The request's body reversed into the slot's response arena, as a proper answer; its length. */
function reverseBody(slot: number): number {
  const s = slotWords(slot)
  const bodyOff = (s[3]! + 7) & ~7
  const reqOff = native.sb_arena_offset(ptr, slot, 0)
  const req = region.subarray(reqOff + bodyOff, reqOff + bodyOff + s[4]!)
  region.set(req.slice().reverse(), native.sb_arena_offset(ptr, slot, 1))
  return req.length
}

/** Answer a claimed request properly: the body reversed, through the library. */
function answer(slot: number) {
  const gen = Atomics.load(slotWords(slot), SLOT.state) >>> 8
  return native.sb_worker_complete(ptr, slot, gen, 200, 0, 0, reverseBody(slot))
}

const connected = () => (worker ? worker.connected : true)
const first = claimed[0] ?? 0

const scenarios: Record<string, () => void> = {
  // Random bytes over the header, both rings and every slot header.
  scribble: () => {
    for (let i = 0; i < ARENAS; i++) region[i] = (random() * 256) | 0
  },
  "cq-tail-far-ahead": () =>
    Atomics.store(words, CQ_TAIL, (Atomics.load(words, CQ_HEAD) + ringSize + 1 + ((random() * 1e9) | 0)) >>> 0),
  // (one behind is legal: a push whose entry was taken before its tail store landed, docs/PROTOCOL.md §4)
  "cq-tail-behind-head": () =>
    Atomics.store(words, CQ_TAIL, (Atomics.load(words, CQ_HEAD) - 2 - ((random() * 1000) | 0)) >>> 0),
  "cq-entry-out-of-range": () => pushCq(slotCount + ((random() * (4096 - slotCount)) | 0)),
  "cq-entry-negative": () => pushCq(0xffffffff, true),
  // tagged with a position that is not the entry's (a lap ahead or any other)
  "cq-entry-out-of-sequence": () =>
    pushCq(((Atomics.load(words, CQ_TAIL) + 2 + ((random() * 1000) | 0)) << 12) | first, true),
  "done-with-wrong-generation": () => {
    const s = slotWords(first)
    const gen = Atomics.load(s, SLOT.state) >>> 8
    const wrong = (gen + 1 + ((random() * 1000) | 0)) & 0xffffff
    s[SLOT.respBody] = 0
    Atomics.store(s, SLOT.state, ((wrong << 8) | DONE) >>> 0)
    pushCq(first)
  },
  "done-while-still-claimed": () => {
    pushCq(first) // state word left CLAIMED
  },
  "response-body-larger-than-arena": () =>
    completeAs(first, (s) => (s[SLOT.respBody] = arenaSize + 1 + ((random() * 1e6) | 0))),
  "response-head-larger-than-arena": () => completeAs(first, (s) => (s[SLOT.respHead] = arenaSize + 1)),
  "response-lengths-wrap-u32": () =>
    completeAs(first, (s) => {
      s[SLOT.respHead] = 0xffffffff // align8 wraps to 0
      s[SLOT.respBody] = 16
    }),
  "response-head-plus-body-over-arena": () =>
    completeAs(first, (s) => {
      s[SLOT.respHead] = arenaSize - 4 // aligned up to the arena's end: no room for the body
      s[SLOT.respBody] = 1
    }),
  "response-flags-unknown": () => completeAs(first, (s) => (s[SLOT.flags] = 0x80)),
  "completes-a-slot-never-published": () => completeAs(slotCount - 1, () => {}),
  // Legal but nasty: a response head of random bytes filling the arena, then the body "garbage!".
  "response-head-is-garbage": () =>
    completeAs(first, (s) => {
      const off = native.sb_arena_offset(ptr, first, 1)
      const head = arenaSize - 8
      for (let i = 0; i < head; i++) region[off + i] = random() < 0.2 ? 0 : (random() * 256) | 0
      region.set(new TextEncoder().encode("garbage!"), off + head)
      s[SLOT.respHead] = head
      s[SLOT.respBody] = 8
    }),
  "response-says-cancelled-though-never-cancelled": () => completeAs(first, (s) => (s[SLOT.flags] = 2)),
  // An honest worker preempted between its two stores (docs/PROTOCOL.md §4): the entry is there, the tail comes
  // 300 ms later. The hub takes the answer from the entry, calls nothing corrupt, and carries on when the tail lands.
  "entry-before-its-tail": () => {
    markDone(first, (s) => (s[SLOT.respBody] = reverseBody(first)))
    const tail = Atomics.load(words, CQ_TAIL)
    const cq = new Uint32Array(region.buffer, region.byteOffset, ARENAS / 4)
    Atomics.store(cq, cqBase + (tail & (ringSize - 1)), (((tail + 1) << 12) | first) >>> 0)
    setTimeout(() => {
      Atomics.store(words, CQ_TAIL, (tail + 1) >>> 0)
      ring()
    }, 300)
  },
  "completes-the-same-slot-twice": () => {
    if (answer(first) !== 0) throw new Error("legit completion failed")
    pushCq(first)
  },
}
// ---- floods: first a legal drain ("D", answered "A"), so the hub routes nothing here, then the flood ----
async function drainFirst() {
  writeSync(sock, new Uint8Array([0x44]))
  const deadline = performance.now() + 5000
  while (performance.now() < deadline) {
    try {
      const buf = new Uint8Array(8)
      if (readSync(sock, buf) > 0 && buf.includes(0x41)) return
    } catch {}
    await Bun.sleep(1)
  }
  throw new Error("the hub never acknowledged the drain")
}

/** Calls `step` in a tight loop (no event-loop turns) until the hub hangs up or `ms` pass; prints how many, and
 * "flooded <n> until hung up" when the hub hung up while it flooded. */
function flood(step: () => void, ms = 20_000) {
  console.log("flooding")
  const until = performance.now() + ms
  let n = 0
  let hungUp = false
  while (!hungUp && performance.now() < until) {
    for (let i = 0; i < 1000; i++, n++)
      try {
        step()
      } catch {} // EAGAIN: the socket buffer or the counter is full; go on
    hungUp = socketAtEof()
  }
  console.log(`flooded ${n}${hungUp ? " until hung up" : ""}`)
}

const floods: Record<string, () => void> = {
  "control-flood": () => flood(() => writeSync(sock, new Uint8Array(1024).fill(0x44))),
  "junk-flood": () => flood(() => writeSync(sock, crypto.getRandomValues(new Uint8Array(1024)))),
  "doorbell-flood": () => {
    const one = new Uint8Array([1])
    flood(() => writeSync(hubBells[0]!, one))
  },
  // 64 KiB a write: a reader that reads until the socket is empty could be kept reading
  "doorbell-flood-wide": () => {
    const many = new Uint8Array(65536).fill(1)
    flood(() => writeSync(hubBells[0]!, many))
  },
}

/** Serves requests by polling its ring and never reads its doorbell, announcing itself parked again each time the
 * hub took the announcement (and rang): the rings fill the doorbell's buffer. Prints "deaf <rings> <pending>" once
 * its doorbell did not take a ring (fewer bytes pending than rings but the latest: the hub's send found it full), and
 * serves on until killed, its doorbell left full. */
function deaf() {
  console.log("deaf")
  const libc = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 } })
  const pending = new Int32Array(1)
  const FIONREAD = 0x541b
  let rings = 0
  let full = false
  Atomics.store(words, WORKER_PARKED, 1)
  for (;;) {
    if (Atomics.load(words, WORKER_PARKED) === 0) {
      rings++
      // the hub sends its ring just after taking the announcement: the latest one may be on its way
      if (!full && libc.symbols.ioctl(myBell, FIONREAD, pending) === 0 && pending[0]! < rings - 1) {
        full = true
        console.log(`deaf ${rings} ${pending[0]}`)
      }
      Atomics.store(words, WORKER_PARKED, 1)
    }
    const slot = native.sb_worker_poll(ptr)
    if (slot >= 0) answer(slot)
    else if (slot !== -1) process.exit(0) // the hub hung up
  }
}

if (floods[scenario]) {
  await drainFirst()
  floods[scenario]!()
  const deadline = performance.now() + 1500
  let hungUp = socketAtEof()
  while (!hungUp && performance.now() < deadline) {
    await Bun.sleep(5)
    hungUp = socketAtEof()
  }
  console.log(hungUp ? "hub hung up" : "hub kept me")
  process.exit(0)
}

if (scenario === "deaf") deaf()

const corrupt = scenarios[scenario]
if (!corrupt) throw new Error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(", ")}`)

// A scribbler keeps scribbling, ringing each round; a targeted corruption happens once.
const rounds = scenario === "scribble" ? 50 : 1
for (let r = 0; r < rounds && connected(); r++) {
  corrupt()
  if (random() < 0.5) Atomics.store(words, HUB_PARKED, 1)
  ring()
  await Bun.sleep(2)
}
console.log("corrupted")

// ---- see whether the hub hung up ----
// Read the socket directly: a scribbled sq_tail would make sb_wait report "work" forever.
function socketAtEof(): boolean {
  try {
    return readSync(sock, new Uint8Array(64)) === 0
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "EAGAIN"
  }
}
const deadline = performance.now() + 1500
let hungUp = !connected()
while (!hungUp && performance.now() < deadline) {
  await Bun.sleep(5)
  hungUp = !connected() || (!worker && socketAtEof())
}
console.log(hungUp ? "hub hung up" : "hub kept me")
process.exit(0)
