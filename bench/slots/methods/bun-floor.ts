// The bare Bun floor: two Bun processes ping-ponging over a shared file mapping (Bun.mmap, MAP_SHARED) with
// Atomics loads and stores, both sides busy-polling. No event loop, no promises, none of slotbus's bookkeeping,
// the same three copies per echo as bench/slots/floor.c: request in, request to response (worker), response out.
// It answers "how close is slotbus to what Bun itself can do". Run directly, this file is the worker.
import { existsSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawn } from "../../lib/child.ts"
import { processCpuSeconds, selfCpuSeconds } from "../../lib/cpu.ts"
import { Samples } from "../../lib/samples.ts"
import { partRates, type Sample } from "../measure.ts"
import { settle } from "../settle.ts"

// Layout, in 32-bit words: [0] worker ready, [16] stop; then per slot a line (16 words) with the request
// sequence number and a line with the response's, then the slot's request and response buffers.
const READY = 0
const STOP = 16
const HEAD = 256 // bytes
const LINE = 64

interface Layout {
  words: Int32Array
  bytes: Uint8Array
  req: number[]
  resp: number[]
  reqBuf: Uint8Array[]
  respBuf: Uint8Array[]
}

const align = (n: number) => Math.ceil(n / LINE) * LINE

function fileSize(size: number, inflight: number) {
  return HEAD + inflight * (2 * LINE + 2 * align(size))
}

function layout(map: Uint8Array, size: number, inflight: number): Layout {
  const words = new Int32Array(map.buffer, map.byteOffset, map.byteLength >> 2)
  const l: Layout = { words, bytes: map, req: [], resp: [], reqBuf: [], respBuf: [] }
  for (let k = 0; k < inflight; k++) {
    const base = HEAD + k * (2 * LINE + 2 * align(size))
    l.req.push(base >> 2)
    l.resp.push((base + LINE) >> 2)
    l.reqBuf.push(map.subarray(base + 2 * LINE, base + 2 * LINE + size))
    l.respBuf.push(map.subarray(base + 2 * LINE + align(size), base + 2 * LINE + align(size) + size))
  }
  return l
}

const dir = () => (existsSync("/dev/shm") ? "/dev/shm" : tmpdir())
let runs = 0

/**
 * Measures `inflight` concurrent echoes of `size` bytes for `ms` after a warm-up: until both processes' compilers
 * are done with it and at least `warmMs` (`warmed` false: `warmMs` alone). The hub side runs here, synchronously:
 * this process's event loop is blocked for the duration of each warm-up window and of the measurement.
 */
export async function measure(
  size: number,
  inflight: number,
  ms: number,
  warmMs: number,
  warmed = false,
): Promise<Sample> {
  const file = join(dir(), `slotbus-bunfloor-${process.pid}-${runs++}`)
  writeFileSync(file, new Uint8Array(fileSize(size, inflight)))
  const child = spawn([process.execPath, import.meta.path, file, String(size), String(inflight)])
  try {
    const l = layout(Bun.mmap(file, { shared: true }), size, inflight)
    const started = performance.now()
    while (Atomics.load(l.words, READY) !== 1) {
      if (child.proc.exitCode !== null || performance.now() - started > 10_000)
        throw new Error(`the Bun floor worker did not start: ${child.stderr.trim()}`)
      await Bun.sleep(1)
    }
    const payload = new Uint8Array(size).map((_, i) => (i * 31 + 7) & 0xff)
    const out = new Uint8Array(size)
    const seq = new Int32Array(inflight)
    const sentAt = new Float64Array(inflight)
    const now = Bun.nanoseconds
    // one clock read per echo, as the slotbus lanes: an echo is sent when the previous one on its slot was read
    const send = (k: number, t: number) => {
      l.reqBuf[k]!.set(payload)
      sentAt[k] = t
      Atomics.store(l.words, l.req[k]!, ++seq[k]!)
    }
    const armed = new Uint8Array(inflight)
    const run = (forMs: number, times: Samples | null, ends: Samples | null) => {
      const start = now()
      for (let k = 0; k < inflight; k++) send(k, start), (armed[k] = 1)
      const deadline = now() + forMs * 1e6
      let count = 0
      let open = inflight
      let idle = 0
      // Stop sending at the deadline, then collect the answers still out so the next run starts clean.
      while (open > 0) {
        for (let k = 0; k < inflight; k++) {
          if (!armed[k] || Atomics.load(l.words, l.resp[k]!) !== seq[k]) {
            // This loop blocks the event loop, so no timer can stop it: it checks for a dead worker itself.
            if ((++idle & 0xfffff) === 0 && (child.proc.exitCode !== null || now() > deadline + 10e9))
              throw new Error("the Bun floor worker stopped answering")
            continue
          }
          out.set(l.respBuf[k]!)
          const t = now()
          if (t < deadline) {
            times?.record(t - sentAt[k]!)
            ends?.record(t)
            count++
            send(k, t)
          } else {
            armed[k] = 0
            open--
          }
        }
      }
      return count
    }
    // a fresh Bun compiles its loop on its JIT threads for a few hundred ms: warmed until they are done, unless cold
    if (warmed) await settle((forMs) => void run(forMs, null, null), warmMs, [process.pid, child.pid])
    else run(warmMs, null, null)
    const times = new Samples()
    const w0 = processCpuSeconds(child.proc.pid)
    const h0 = selfCpuSeconds()
    const t0 = now()
    const ends = new Samples()
    const count = run(ms, times, ends)
    const elapsedS = (now() - t0) / 1e9
    const h1 = selfCpuSeconds()
    const w1 = processCpuSeconds(child.proc.pid)
    if (out[size - 1] !== payload[size - 1] || out[0] !== payload[0])
      throw new Error("the Bun floor worker echoed wrong bytes")
    Atomics.store(l.words, STOP, 1)
    return {
      count,
      elapsedS,
      hubCpuS: h1 - h0,
      workerCpuS: w1 - w0,
      times,
      parts: partRates(ends.values(), t0, inflight),
    }
  } finally {
    await child.kill()
    rmSync(file, { force: true })
  }
}

if (import.meta.main) {
  const [file, sizeText, inflightText] = process.argv.slice(2)
  const size = Number(sizeText)
  const inflight = Number(inflightText)
  const l = layout(Bun.mmap(file!, { shared: true }), size, inflight)
  const done = new Int32Array(inflight)
  Atomics.store(l.words, READY, 1)
  for (let spins = 0; ; spins++) {
    for (let k = 0; k < inflight; k++) {
      const s = Atomics.load(l.words, l.req[k]!)
      if (s === done[k]) continue
      l.respBuf[k]!.set(l.reqBuf[k]!)
      done[k] = s
      Atomics.store(l.words, l.resp[k]!, s)
    }
    if ((spins & 0xffff) === 0 && Atomics.load(l.words, STOP) === 1) process.exit(0)
  }
}
