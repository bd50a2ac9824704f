// Warming a freshly started pair up until its runtimes have compiled it. A fresh Bun or Node pair runs its first
// few hundred ms in the interpreter while its compiler threads (JavaScriptCore's JITWorker, V8's workers) take
// most of a 2-CPU machine: 10-100k msg/s at 32 in flight, against ~1 M once compiled (docs/perf/bench-warm-up.md).
// A server is measured compiled, so every pair is: traffic at 32 in flight, in windows, until the compiler threads
// of this process and its children stayed under a tenth of a CPU for SETTLE_WINDOWS windows in a row.
import { compilerNs, processTree } from "../lib/cpu.ts"

export const SETTLE_WINDOW_MS = 25
/** Quiet windows in a row that say the compilers are done. */
export const SETTLE_WINDOWS = 4
/** Quiet: the compiler threads ran at most this share of one CPU over the window. */
export const SETTLE_SHARE = 0.1
/**
 * A pair whose compiler threads are still busy after this long is measured anyway, and the report says so. Every
 * fresh pair seen compiled in under 1 s (2 s both sides fresh, as the backends' hubs); V8's threads also collect
 * garbage, ~50% of a CPU for a Node pair echoing 64 KiB, so such a pair is measured when this passes.
 */
export const SETTLE_MAX_MS = 2000
/** The traffic a pair is warmed with: requests in flight. */
export const SETTLE_INFLIGHT = 32

export interface Settled {
  /** How long the traffic ran. */
  ms: number
  /** The compilers went quiet (false: SETTLE_MAX_MS passed first). */
  settled: boolean
}

/** This process and its descendants but `except` (the load burners): the processes of a pair measured from here. */
export function pairProcesses(except: ReadonlySet<number>): number[] {
  return processTree(process.pid).filter((p) => !except.has(p))
}

/**
 * Runs `warm(ms)` (traffic for that long, 32 in flight) window after window until the compiler threads of `pids`
 * went quiet, and at least `minMs`.
 */
export async function settle(
  warm: (ms: number) => Promise<void> | void,
  minMs: number,
  pids: readonly number[],
): Promise<Settled> {
  const t0 = performance.now()
  let quiet = 0
  let compiled = compilerNs(pids)
  for (;;) {
    const w0 = performance.now()
    await warm(SETTLE_WINDOW_MS)
    const now = performance.now()
    const c = compilerNs(pids)
    quiet = c - compiled <= SETTLE_SHARE * (now - w0) * 1e6 ? quiet + 1 : 0
    compiled = c
    const ms = now - t0
    if (quiet >= SETTLE_WINDOWS && ms >= minMs) return { ms, settled: true }
    if (ms >= Math.max(SETTLE_MAX_MS, minMs)) return { ms, settled: false }
  }
}
