// The closed loop the request benches share: `inflight` callers, each calling again as soon as its call returns.
import { Samples } from "./samples.ts"

export interface LoopResult<K extends string> {
  /** Calls completed in the measured time. */
  count: number
  perS: number
  p50us: number
  p99us: number
  /** How far each of `meters` moved over the measured time (CPU seconds, say). */
  used: Record<K, number>
}

/** A quarter of `ms` of warm-up, then `ms` measured: every call's round trip, and `meters` read before and after. */
export async function closedLoop<K extends string>(
  call: () => Promise<unknown>,
  inflight: number,
  ms: number,
  meters: Record<K, () => number>,
): Promise<LoopResult<K>> {
  const run = async (dur: number, hist: Samples | null) => {
    const end = Bun.nanoseconds() + dur * 1e6
    let count = 0
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        // one clock read per call: a call starts when the previous one ended
        for (let t0 = Bun.nanoseconds(); t0 < end; ) {
          await call()
          const t1 = Bun.nanoseconds()
          hist?.record(t1 - t0)
          count++
          t0 = t1
        }
      }),
    )
    return count
  }
  await run(ms / 4, null)
  const names = Object.keys(meters) as K[]
  const hist = new Samples()
  const before = names.map((k) => meters[k]())
  const t0 = Bun.nanoseconds()
  const count = await run(ms, hist)
  const s = (Bun.nanoseconds() - t0) / 1e9
  const used = Object.fromEntries(names.map((k, i) => [k, meters[k]() - before[i]!])) as Record<K, number>
  return { count, perS: count / s, p50us: hist.percentile(50) / 1e3, p99us: hist.percentile(99) / 1e3, used }
}
