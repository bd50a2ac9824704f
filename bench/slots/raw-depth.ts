// The hub's side of the transport alone at depth, with no promise, pending record or event loop: a synchronous loop
// of libslotbus calls (claim, copy 64 B in, publish; poll, copy the answer out, release) against the C worker
// (examples/c-worker, --spin), n requests in flight (default 32), 3 rounds of 2 s after 0.5 s. Set beside `bench
// --only slotbus-c:spin` (the same worker behind the public API's hub), it says what the API costs at depth.
//   bun bench/slots/raw-depth.ts [n]
import { spawn } from "../lib/child.ts"
import { buildWithZig } from "./cc.ts"
import { HUB_CONFIG_WORDS, loadNative, type Chan } from "../../src/native/ffi.ts"
import { Channel } from "../../src/core/wire/channel.ts"
const native = await loadNative()
const bin = await buildWithZig("examples", "c-worker")
const nameStr = `rawdepth-${process.pid}`
const name = Buffer.from(`${nameStr}\0`)
const listenFd = native.sb_listen(name)
if (listenFd < 0) throw new Error(`sb_listen ${listenFd}`)
const child = spawn([bin, nameStr, "--spin"])
const config = new Uint32Array(HUB_CONFIG_WORDS)
config.set([32, 64 * 1024, 1024 * 1024, 0])
const err = new Int32Array(2)
let hub: Chan | null = null
for (let i = 0; i < 5000 && !hub; i++) {
  hub = native.sb_accept(listenFd, config, err, err.subarray(1)) as Chan | null
  if (!hub) await Bun.sleep(1)
}
native.sb_unlisten(listenFd)
if (!hub) throw new Error(`accept ${err[0]}`)
const ch = new Channel(hub, "hub")
const body = new Uint8Array(64).fill(7)
const out = new Uint8Array(64)
const inflight = Number(process.argv[2] ?? 32)
const publish = () => {
  const slot = native.sb_hub_claim(hub!)
  ch.arena(slot, 0, 64).set(body)
  const r = native.sb_hub_publish(hub!, slot, 0, 1, 0, 64)
  if (r !== 0) throw new Error(`publish ${r}`)
}
const run = (ms: number) => {
  for (let k = 0; k < inflight; k++) publish()
  let n = 0
  const end = performance.now() + ms
  for (;;) {
    const slot = native.sb_hub_poll(hub!)
    if (slot < 0) continue
    const off = ch.msg[7]! // body_off (sb_msg)
    out.set(ch.arena(slot, 1, off + 64).subarray(off, off + 64))
    native.sb_hub_release(hub!, slot)
    n++
    if ((n & 1023) === 0 && performance.now() > end) break
    publish()
  }
  // the answers still out, so the next round starts with every slot free
  for (let open = inflight - 1; open > 0; ) {
    const s = native.sb_hub_poll(hub!)
    if (s >= 0) native.sb_hub_release(hub!, s), open--
  }
  if (out[63] !== 7) throw new Error("the C worker echoed wrong bytes")
  return n
}
run(500)
for (let r = 0; r < 3; r++) {
  const t0 = performance.now()
  const n = run(2000)
  console.log(`raw hub, ${inflight} in flight: ${(n / ((performance.now() - t0) / 1000) / 1e6).toFixed(2)} M msg/s`)
}
await child.kill()
native.sb_close(hub)
