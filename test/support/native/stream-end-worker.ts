// A worker that drives libslotbus's stream calls by hand (csrc/stream.c, docs/PROTOCOL.md §9.7), to pin down how an
// error END with pairs waits for credit. Usage: bun test/support/native/stream-end-worker.ts <bus-name>
// It answers its first request as a stream, with the hub's caller not reading yet:
//   begin (no headers), one DATA frame that leaves 40 or 48 bytes of credit (48 if the hub granted after the HEAD),
//   then prints
//     "wrote <bytes>"        the DATA taken
//     "end <r>"              an error END whose 52 bytes of pairs (64 with its header) need more credit: -EAGAIN
//     "wait <r>"             sb_worker_stream_wait for 300 ms: 0 (timed out), since the END still does not fit
//     "big end <r>"          an END of window − 32 bytes, which fits neither before the ring's end nor after a PAD:
//                            -E2BIG, never -EAGAIN (waiting could not help)
//     "ready"                now the test reads the body
//   then ends with the small error END, waiting for credit as long as it takes: 40 bytes before the ring's end, so
//   a PAD and the END at 0 ("ended <r>"). It exits 0 when the hub goes away.
import { toArrayBuffer, type Pointer } from "bun:ffi"
import { loadNative, Msg, MSG_WORDS, RespFlag } from "../../../src/native/ffi.ts"

const native = await loadNative()
const name = process.argv[2]
if (!name) throw new Error("usage: stream-end-worker.ts <bus-name>")

const err = new Int32Array(1)
const ch = native.sb_connect(Buffer.from(`${name}\0`), -1, 5000, err) as Pointer | null
if (!ch) throw new Error(`sb_connect failed: ${err[0]}`)
const msg = new Uint32Array(toArrayBuffer(native.sb_last_msg(ch)!, 0, MSG_WORDS * 4))

let slot = -1
while (slot < 0) {
  slot = native.sb_worker_poll(ch)
  if (slot === -1) native.sb_wait(ch, 100, 0)
  else if (slot < 0) throw new Error(`sb_worker_poll: ${slot}`)
}
const gen = msg[Msg.gen]!
const window = msg[Msg.window]!

const pairs = (message: string) => new TextEncoder().encode(`message\0${message}\0name\0StreamError\0`)
const small = pairs("the handler failed midway.") // 52 bytes: an END of 64
if (small.length !== 52) throw new Error(`the small END's pairs are ${small.length} bytes, not 52`)
const big = pairs("x".repeat(window - 66)) // window − 40 bytes: an END of window − 32
if (big.length !== window - 40) throw new Error(`the big END's pairs are ${big.length} bytes, not ${window - 40}`)

const check = (what: string, r: number) => {
  if (r < 0) throw new Error(`${what}: ${r}`)
  return r
}
check("begin", native.sb_worker_stream_begin(ch, slot, gen, 200, null, 0)) // HEAD: 8 bytes at 0
// one DATA frame of window − 48 bytes from 8: the position is window − 40, and the credit (limit = window, or
// window + 8 once the hub consumed the HEAD) leaves 40 or 48 bytes
const data = new Uint8Array(window - 56).fill(7)
console.log(`wrote ${check("write", native.sb_worker_stream_write(ch, slot, gen, data, data.length))}`)
console.log(`end ${native.sb_worker_stream_end(ch, slot, gen, RespFlag.ERROR, small, small.length)}`)
console.log(`wait ${native.sb_worker_stream_wait(ch, slot, gen, 300)}`)
console.log(`big end ${native.sb_worker_stream_end(ch, slot, gen, RespFlag.ERROR, big, big.length)}`)
console.log("ready")
for (;;) {
  const r = native.sb_worker_stream_end(ch, slot, gen, RespFlag.ERROR, small, small.length)
  if (r !== -11) {
    console.log(`ended ${r}`)
    break
  }
  check("wait", native.sb_worker_stream_wait(ch, slot, gen, 5000))
}
while (native.sb_wait(ch, 1000, 0) !== -32);
native.sb_close(ch)
