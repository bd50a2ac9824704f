// A fresh poller whose CPU a busy thread of another process shares (the test pins both there with taskset), finding
// work on every 10th poll (sb_idle: after each yield that ran another thread), its peer's CPU word naming `peer`
// (`other`: another CPU than this one, `same`: this one): the TypeScript Pump, or with `c` libslotbus's sb_idle (the C
// and Python workers' loop). Prints {"cpu":n,"polls":n,"yields":n} after 300 ms. The yields counted are those that
// ran another thread: the Pump's CPU word publishes after each (docs/PROTOCOL.md §5.1), sb_idle's the kernel counts
// as involuntary switches.
import { readFileSync } from "node:fs"
import { channelPair } from "../../../bench/slots/channel-pair.ts"
import { type Parking, Pump } from "../../../src/core/wire/pump.ts"
import { loadNative } from "../../../src/native/ffi.ts"
import { Calm } from "./calm.ts"

const MS = 300
const SB_IDLE_SPIN = 1 // csrc/slotbus.h's sb_idle_mode: polls and yields, never parks
const native = await loadNative()
const cpu = native.sb_cpu()
const peer = process.argv[2] === "same" ? cpu : cpu + 1
let polls = 0
let yields = 0

if (process.argv[3] === "c") {
  const switches = () =>
    Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync("/proc/thread-self/status", "latin1"))![1])
  const pair = await channelPair()
  pair.hub.noteCpu(peer)
  const before = switches()
  // work comes after each call that gave the CPU up to another thread (it took 2 µs or more), as a peer's answer
  const end = Bun.nanoseconds() + MS * 1e6
  for (let work = 0, t = Bun.nanoseconds(); t < end; polls++) {
    native.sb_idle(pair.worker.ptr, SB_IDLE_SPIN, work)
    const back = Bun.nanoseconds()
    work = back - t >= 2000 ? 1 : 0
    t = back
  }
  yields = switches() - before
  pair.close()
} else {
  const parking: Parking = {
    isOpen: true,
    park: () => 0,
    unpark: () => {},
    listenDoorbell: () => {},
    noteCpu: () => void yields++,
    peerCpu: () => peer,
  }
  const collect = () => (++polls % 10 === 0 ? 1 : 0)
  const pump = new Pump(parking, "adaptive", { collect, wanted: () => true }, new Calm())
  pump.kick()
  await Bun.sleep(MS)
  pump.stop()
}
console.log(JSON.stringify({ cpu, polls, yields }))
