// One measurement: `inflight` concurrent request loops for a fixed time, every round trip timed on the hub. Also run
// under Node (bench/slots/node/hub.ts, built to JavaScript), so it reads the clock through `nanoseconds`.
import { selfCpuSeconds } from "../lib/cpu.ts"
import { Samples } from "../lib/samples.ts"
import type { Transport } from "./transport.ts"

export interface Sample {
  count: number
  elapsedS: number
  hubCpuS: number
  workerCpuS: number
  /** Round-trip times in ns. */
  times: Samples
  /** The msg/s of each of PARTS runs of equal count of the measured round trips, in order (see partRates). */
  parts: number[]
}

/**
 * The measured round trips are cut into this many runs of equal count, and msg/s is the median of the runs' rates:
 * a stall (a GC, a JIT tier-up, the scheduler) spoils the one run it falls in, however long it lasts.
 */
export const PARTS = 5

/**
 * A run holds at least this many round trips per request loop, or there is one run: with many in flight the answers
 * come in bursts of up to one per loop, and a run shorter than a few bursts rates the burst (a 1 MiB echo at 32 in
 * flight, ~200 round trips in 133 ms, was rated 3 million a second by a run inside one burst).
 */
export const MIN_RUN_TRIPS_PER_LOOP = 4

/**
 * The rates (msg/s) of PARTS runs of equal count of the round trips that ended at `endsNs` (ascending), the first
 * run timed from `startNs`, each next one from the end of the one before; one rate over them all when there are
 * fewer than PARTS × MIN_RUN_TRIPS_PER_LOOP × `inflight`.
 */
export function partRates(endsNs: ArrayLike<number>, startNs: number, inflight = 1): number[] {
  const n = endsNs.length
  if (n === 0) return [0]
  if (n < PARTS * MIN_RUN_TRIPS_PER_LOOP * inflight) return [(n * 1e9) / Math.max(1, endsNs[n - 1]! - startNs)]
  const rates: number[] = []
  let from = startNs
  let done = 0
  for (let k = 1; k <= PARTS; k++) {
    const upTo = Math.floor((k * n) / PARTS)
    const to = endsNs[upTo - 1]!
    rates.push(((upTo - done) * 1e9) / Math.max(1, to - from))
    from = to
    done = upTo
  }
  return rates
}

/** Nanoseconds of a monotonic clock: Bun's own, or performance.now() under Node (sub-microsecond there too). */
const nanoseconds: () => number = typeof Bun !== "undefined" ? Bun.nanoseconds : () => performance.now() * 1e6

/** A payload that is not all zeros, so an echo that drops or shifts bytes is caught by `checkEcho`. */
export function payload(size: number): Uint8Array {
  const b = new Uint8Array(size)
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff
  return b
}

/** One round trip, compared byte for byte. */
export async function checkEcho(t: Transport, body: Uint8Array) {
  const reply = await t.roundTrip(body)
  const want = t.reverses ? body.slice().reverse() : body
  if (
    reply.length !== want.length ||
    Buffer.compare(Buffer.from(reply.buffer, reply.byteOffset, reply.length), Buffer.from(want)) !== 0
  )
    throw new Error(`the worker's reply to a ${body.length}-byte request is wrong (${reply.length} bytes)`)
}

async function lanes(
  t: Transport,
  body: Uint8Array,
  inflight: number,
  ms: number,
  times: Samples | null,
  ends: Samples | null = null,
): Promise<number> {
  const now = nanoseconds
  const deadline = now() + ms * 1e6
  const size = body.length
  let count = 0
  // One clock read per round trip, as the floors do: a call starts when the lane's previous one ended (a clock
  // read is ~30 ns here, a tenth of what a call costs at 32 in flight).
  const lane = async (_: unknown, i: number) => {
    for (let t0 = now(); t0 < deadline; ) {
      const reply = await t.roundTrip(body, i)
      const t1 = now()
      if (reply.length !== size) throw new Error(`got ${reply.length} bytes back for a ${size}-byte request`)
      times?.record(t1 - t0)
      ends?.record(t1)
      count++
      t0 = t1
    }
  }
  await Promise.all(Array.from({ length: inflight }, lane))
  return count
}

/** Round trips for `ms`, not measured; resolves with how many. */
export function warmTransport(t: Transport, body: Uint8Array, inflight: number, ms: number): Promise<number> {
  return lanes(t, body, inflight, ms, null)
}

/** Warms up for `warmMs`, then measures for `ms`; CPU is read on both sides just around the measured part. */
export async function measureTransport(
  t: Transport,
  body: Uint8Array,
  inflight: number,
  ms: number,
  warmMs: number,
): Promise<Sample> {
  await warmTransport(t, body, inflight, warmMs)
  const times = new Samples()
  const w0 = await t.workerCpu()
  const h0 = selfCpuSeconds()
  const t0 = nanoseconds()
  const ends = new Samples()
  const count = await lanes(t, body, inflight, ms, times, ends)
  const elapsedS = (nanoseconds() - t0) / 1e9
  const h1 = selfCpuSeconds()
  const w1 = await t.workerCpu()
  const workerCpuS = w1 - w0
  // A worker thread's time is part of this process's: count it once, on its side.
  const hubCpuS = t.sameProcess ? h1 - h0 - workerCpuS : h1 - h0
  return { count, elapsedS, hubCpuS, workerCpuS, times, parts: partRates(ends.values(), t0, inflight) }
}

/** What the orchestrator measures a method through: a transport in this process, or a hub in a process of its own. */
export interface Driver {
  /** One round trip of `size` bytes, checked byte for byte. */
  check(size: number): Promise<void>
  /** Round trips of `size` bytes, `inflight` at once, for `ms` after `warmMs` of warm-up. */
  measure(size: number, inflight: number, ms: number, warmMs: number): Promise<Sample>
  /** Round trips of `size` bytes, `inflight` at once, for `ms`, not measured (see settle.ts). */
  warm(size: number, inflight: number, ms: number): Promise<void>
  close(): Promise<void>
}

/** A transport whose hub is this process, measured here. */
export function transportDriver(t: Transport): Driver {
  return {
    check: (size) => checkEcho(t, payload(size)),
    measure: (size, inflight, ms, warmMs) => measureTransport(t, payload(size), inflight, ms, warmMs),
    warm: async (size, inflight, ms) => void (await warmTransport(t, payload(size), inflight, ms)),
    close: () => t.close(),
  }
}
