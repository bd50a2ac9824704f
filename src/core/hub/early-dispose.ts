// A bus closed by `await using` at the top level of a server module, where its scope ends as soon as the module has
// loaded: every request after it fails, while the process (a Bun.serve, say) keeps running. Its one warning, and
// what its requests then fail with.

const EARLY_DISPOSE_MS = 5000
const EARLY_DISPOSE_CHECK_MS = 200
let earlyDisposeWarned = false

/**
 * Bus `name`, made at `createdAt` (performance.now()), is disposed having taken `requests`: soon after listen and
 * before any request, it gets one warning naming the right pattern (once a process), if the process keeps running.
 */
export function warnEarlyDispose(name: string, createdAt: number, requests: number): void {
  if (
    requests !== 0 ||
    performance.now() - createdAt >= EARLY_DISPOSE_MS ||
    earlyDisposeWarned ||
    process.env.NODE_ENV === "test"
  )
    return
  // unref'd: it fires only if something else keeps the process alive after the bus is gone
  setTimeout(() => {
    if (earlyDisposeWarned) return
    earlyDisposeWarned = true
    console.warn(
      `slotbus: bus "${name}" was closed by \`await using\` before any request, and the process kept running: in a server, keep it in a plain \`const bus = await SlotBus.listen(…)\` and close it on SIGTERM/SIGINT (the first example of slotbus's README)`,
    )
  }, EARLY_DISPOSE_CHECK_MS).unref()
}

/** What a request to closed bus `name` fails with (BusClosedError's message); `disposed`: `await using` closed it. */
export function closedMessage(name: string, disposed: boolean): string {
  return disposed
    ? `bus "${name}" is closed: \`await using\` closed it where its scope ended; in a server, keep it in a plain const and close it on SIGTERM/SIGINT`
    : `bus "${name}" is closed`
}
