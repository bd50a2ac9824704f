// What a process holds that would outlive it, let go when it exits without closing it: a bus's socket files and an
// election it holds (PROTOCOL §1.1), a topic's or a contest's socket files and markers (§12.5, §13.2), a bus's
// flight-recorder file (§16.1). process.on("exit") runs on process.exit(), the event loop's end and an uncaught
// error, in Bun and in Node. A stop signal whose default action ends the process (SIGTERM, SIGINT, SIGHUP) runs no
// exit hook: while the listener here is the signal's only one (npm's signal-exit's aside, below), it lets go of
// everything, then raises the signal again with its default action, so the process still dies of it; with a
// listener of the app's own it does nothing (the app decides, and its process.exit() lets go). A signal the process
// was started with ignored (nohup's SIGHUP, a shell's `&` job's SIGINT: Bun keeps them, Node resets them to their
// default at its start) gets no listener here, since a listener would un-ignore it. Once the app listens to it
// (which un-ignores it), the listener here joins, first in line: Bun gives the signal its default action once the
// app's last listener is gone (a process.once's as it runs), and the next would end the process with nothing let
// go. kill -9 leaves everything to the next process to open the name. What must finish before a SIGTERM ends the
// process (a pool's worker answering what it holds, drainBeforeStop) runs first, when no listener of the app's
// takes the signal; a second SIGTERM meanwhile ends the process at once.
import { readFileSync } from "node:fs"
import { constants } from "node:os"

interface Closes {
  close(): void
}

// One state a process: a second copy of this module (`bun --hot` runs the modules again; an app that bundles slotbus
// twice) adds to the first's, behind the first's listeners, where two listeners would each count the other as the
// app's and neither act: the signal would be lost.
interface AtExit {
  held: Set<Closes>
  drains: Set<() => Promise<unknown>>
  hooked: boolean
  draining: boolean
}
const state = ((globalThis as Record<symbol, unknown>)[Symbol.for("slotbus.atExit")] ??= {
  held: new Set(),
  drains: new Set(),
  hooked: false,
  draining: false,
}) as AtExit
const { held, drains } = state

/** `x.close()` runs when this process exits unless called before; x's close() calls the function returned first. */
export function closeAtExit(x: Closes): () => void {
  hook()
  held.add(x)
  return () => void held.delete(x)
}

/**
 * On a SIGTERM no listener of the app's takes, `drain()` is awaited (it must settle in bounded time) before the
 * process lets go and dies of the signal; the function returned takes it back.
 */
export function drainBeforeStop(drain: () => Promise<unknown>): () => void {
  hook()
  drains.add(drain)
  return () => void drains.delete(drain)
}

function hook() {
  if (state.hooked) return
  state.hooked = true
  process.on("exit", letGo)
  // first in line: an app's process.once listener leaves the list as it runs, so counted after it, it is missed
  for (const s of stopSignals()) process.prependListener(s, onStopSignal)
  process.on("newListener", adopt)
}

/** An app's listener for a stop signal started ignored: the one here goes before it (see the head of this file). */
function adopt(event: string | symbol, listener: unknown) {
  const s = event as NodeJS.Signals
  if (listener === onStopSignal || !STOP_SIGNALS.includes(s) || process.listeners(s).includes(onStopSignal)) return
  process.prependListener(s, onStopSignal)
}

function letGo() {
  for (const h of [...held])
    try {
      h.close()
    } catch {} // the others still go
}

function onStopSignal(signal: NodeJS.Signals) {
  if (process.listenerCount(signal) - signalExitListeners() > 1) return
  if (signal === "SIGTERM" && drains.size > 0 && !state.draining) {
    state.draining = true
    void Promise.allSettled([...drains].map(async (d) => d())).then(() => dieOf(signal))
    return
  }
  dieOf(signal)
}

function dieOf(signal: NodeJS.Signals) {
  letGo()
  process.removeListener("newListener", adopt)
  for (const s of STOP_SIGNALS) process.removeListener(s, onStopSignal)
  process.kill(process.pid, signal)
}

/**
 * The listeners npm's signal-exit put on each signal (its v4's count in globalThis, v3's on process): like this one,
 * each acts only when no other listens, so each must count the other's out, or both would wait and the signal be lost.
 */
function signalExitListeners(): number {
  const count = (o: unknown) =>
    typeof (o as { count?: unknown })?.count === "number" ? (o as { count: number }).count : 0
  const g = globalThis as unknown as Record<symbol, unknown>
  return (
    count(g[Symbol.for("signal-exit emitter")]) +
    count((process as { __signal_exit_emitter__?: unknown }).__signal_exit_emitter__)
  )
}

const STOP_SIGNALS: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"]
let signals: NodeJS.Signals[] | undefined

/** The stop signals not ignored since this process started: /proc/self/status's SigIgn, SIGTERM alone where it cannot say. */
function stopSignals(): NodeJS.Signals[] {
  if (signals) return signals
  let ignored: bigint
  try {
    ignored = BigInt(`0x${/^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))![1]}`)
  } catch {
    return (signals = ["SIGTERM"])
  }
  return (signals = STOP_SIGNALS.filter((s) => ((ignored >> BigInt(constants.signals[s] - 1)) & 1n) === 0n))
}
