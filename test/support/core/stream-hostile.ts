// A worker that breaks a streamed answer on purpose (docs/PROTOCOL.md §9.6), to show the hub refuses it. Usage:
//   bun test/support/core/stream-hostile.ts <bus-name> <scenario> [seed]
// Attaches with native.sb_connect, takes one request, begins a stream (HEAD) and writes one DATA frame, prints
// "begun", then breaks the stream as <scenario> says and prints "broken"; prints "hub hung up" once the hub drops
// it. Scenarios: length (the DATA frame's length runs past the ring), type (an unknown frame type), head (a second
// HEAD), zero (DATA of length 0), produced (a position beyond the credit, notified), notify (a notification
// without the notify word), random (the frame header overwritten with random words from seed).
import { toArrayBuffer, type Pointer } from "bun:ffi"
import { writeSync } from "node:fs"
import { loadNative } from "../../../src/native/ffi.ts"
import { doorbellCandidates } from "../fds.ts"

const native = await loadNative()
const [name, scenario, seedArg] = process.argv.slice(2)
if (!name || !scenario) throw new Error("usage: stream-hostile.ts <bus-name> <scenario> [seed]")

const before = doorbellCandidates()
const err = new Int32Array(1)
const ptr = native.sb_connect(Buffer.from(`${name}\0`), -1, 5000, err) as Pointer | null
if (!ptr) throw new Error(`sb_connect failed: ${err[0]}`)
const myBell = native.sb_doorbell_fd(ptr)
const sock = native.sb_socket_fd(ptr)
const hubBells = [...doorbellCandidates()].filter((fd) => !before.has(fd) && fd !== myBell && fd !== sock)
const region = new Uint8Array(toArrayBuffer(native.sb_region(ptr)!, 0, native.sb_region_size(ptr)))
const words = new Uint32Array(region.buffer, region.byteOffset, region.length >> 2)
const ringSize = words[4]!
const SLOTS = Math.ceil((1024 + 8 * ringSize) / 64) * 64
console.log("ready")

let slot = -1
while (slot < 0) {
  slot = native.sb_worker_poll(ptr)
  if (slot === -1) native.sb_wait(ptr, 10, 0)
  else if (slot < -1) throw new Error(`sb_worker_poll: ${slot}`)
}
const msg = new Uint32Array(toArrayBuffer(native.sb_last_msg(ptr)!, 0, 44))
const gen = msg[8]!
const arenaOff = native.sb_arena_offset(ptr, slot, 1)
const hdr = (SLOTS + 64 * slot) >> 2 // the slot header, as a word index
const LIMIT = hdr + 11,
  PRODUCED = hdr + 12,
  NOTIFY = hdr + 13
const frame = (arenaOff + 8) >> 2 // the DATA frame after an empty HEAD

if (native.sb_worker_stream_begin(ptr, slot, gen, 200, null, 0) !== 0) throw new Error("begin failed")
if (native.sb_worker_stream_write(ptr, slot, gen, new Uint8Array(16).fill(0x61), 16) !== 16)
  throw new Error("write failed")
console.log("begun")

function push() {
  const tail = Atomics.load(words, 192 >> 2)
  Atomics.store(words, (1024 >> 2) + ringSize + (tail & (ringSize - 1)), slot)
  Atomics.store(words, 192 >> 2, (tail + 1) >>> 0)
  const one = new Uint8Array([1]) // a ring is one byte (docs/PROTOCOL.md §1.2)
  for (const fd of hubBells)
    try {
      writeSync(fd, one)
    } catch {}
}

// Wait until the hub has taken the notification of the write (so notify is 0 and the slot is not in its ring).
const drained = performance.now() + 5000
while ((Atomics.load(words, NOTIFY) !== 0 || words[256 >> 2] !== words[192 >> 2]) && performance.now() < drained)
  await Bun.sleep(1)

let seed = Number(seedArg ?? 1)
const random = () => {
  seed = (seed * 1103515245 + 12345) >>> 0
  return seed
}
switch (scenario) {
  case "length":
    Atomics.store(words, frame, 0xfffffff0)
    break
  case "type":
    Atomics.store(words, frame + 1, 9)
    break
  case "head":
    Atomics.store(words, frame + 1, 1)
    break
  case "zero":
    Atomics.store(words, frame, 0)
    break
  case "random":
    Atomics.store(words, frame, random())
    Atomics.store(words, frame + 1, random())
    break
  case "produced":
    Atomics.store(words, PRODUCED, (Atomics.load(words, LIMIT) + 64) >>> 0)
    Atomics.store(words, NOTIFY, 1)
    push()
    break
  case "notify":
    push() // notify is 0: a notification nobody signalled
    break
  default:
    throw new Error(`unknown scenario ${scenario}`)
}
console.log("broken")
for (;;) {
  const r = native.sb_wait(ptr, 50, 0)
  if (r === -32) break // EPIPE: the hub hung up
  while (native.sb_worker_poll(ptr) >= 0) {} // nothing else is answered
  native.sb_worker_cancel_seq(ptr) // seen, so that waiting sleeps again (a moved cancel_seq wakes it)
}
writeSync(1, "hub hung up\n") // synchronously: the process ends right after
