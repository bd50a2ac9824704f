// A worker's process ends on an uncaught error or an unhandled rejection (docs/api.md, "A worker's lifetime"), as
// Node's does: Bun 1.4.5 keeps a process whose module still awaits (`await worker.closed`, as the README shows a
// worker) alive after one, so a pool would never see the crash and a deploy of such code would pass its dwell
// (BUN_QUIRKS.UNCAUGHT_KEEPS_ALIVE in src/runtime/bun/quirks.ts, with its canary).
// One listener per event for the process (a hot reload's second copy of this module finds it installed). A listener
// of the app's own for the same event decides instead (Node's rule: a process with a handler carries on), and so does
// `--unhandled-rejections=warn|none|warn-with-error-code` for rejections. Under `bun test` no listener is called.
// `exitOnUncaught: false` keeps the process running under Bun only: under Node it leaves Node's own default, which
// ends the process with code 1 all the same (its line says so).
import { quirks } from "../../runtime/index.ts"

const STATE = Symbol.for("slotbus.exitOnUncaught")
type State = { on: boolean; installed: boolean }

const KEEP_REJECTIONS = /^--unhandled-rejections=(?:warn|none|warn-with-error-code)$/

function end(event: "uncaughtException" | "unhandledRejection", state: State, listener: unknown, error: unknown) {
  if (!state.on || process.listeners(event).some((l) => l !== listener)) return
  if (event === "unhandledRejection" && process.execArgv.some((a) => KEEP_REJECTIONS.test(a))) return
  const what = event === "uncaughtException" ? "an uncaught error" : "an unhandled rejection"
  console.error(error)
  console.error(`slotbus: worker process ${process.pid} exits with code 1 on ${what} (${keeps(event)})`)
  process.exit(1)
}

/**
 * What keeps the process running instead, in this runtime: under Node, exitOnUncaught: false leaves Node's own
 * default, which ends the process with code 1 as well (quirks.uncaughtKeepsAlive false).
 */
function keeps(event: "uncaughtException" | "unhandledRejection"): string {
  const others =
    event === "uncaughtException"
      ? `a process.on("${event}") listener of the app's,`
      : `a process.on("${event}") listener of the app's, or --unhandled-rejections=warn,`
  return quirks.uncaughtKeepsAlive
    ? `exitOnUncaught: false, or ${others} keeps it running`
    : `as Node's own default does: exitOnUncaught: false does not keep it running under Node, ${others} does`
}

/** From a worker's connect on: the process ends on an uncaught error or unhandled rejection; `false` opts it out. */
export function exitOnUncaught(on: boolean) {
  const g = globalThis as Record<symbol, State | undefined>
  const state = (g[STATE] ??= { on, installed: false })
  if (!on) state.on = false // an opt-out holds for the process, whichever of its workers asked for it
  if (!state.on || state.installed) return
  state.installed = true
  const exception = (e: unknown) => end("uncaughtException", state, exception, e)
  const rejection = (e: unknown) => end("unhandledRejection", state, rejection, e)
  process.on("uncaughtException", exception)
  process.on("unhandledRejection", rejection)
}
