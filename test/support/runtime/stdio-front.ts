// A stdio bus (slotbus/stdio) run under Node 26 by test/support/runtime/peers.ts. Usage: stdio-front.js <program>
// <worker script> [no-read]: a pool "w" of two `<program> <worker script> echo` (test/stdio/workers/worker.ts), then
// one line per step, "<step> <JSON>": "echoed" (32 requests at once: every answer its own, the pids that answered),
// "logged" (a worker's stderr lines, as the bus's log events), "settled" (how the 8 requests in flight on the
// workers, which never answer, settled after a kill -9 of both: the error's name each), "restarted" (the new pids),
// "reloaded" (the pids after reload()), "answered" (a request after it), "stopped" (the bus's state after stop()).
// no-read: one worker that never reads its stdin, 256 KiB max_output_queue; 400 requests of 16 KiB at once, then
// "refused" (how many of the last 300 got BackpressureError) and "queued" (the bytes the bus holds for it).
import { BackpressureError, StdioBus } from "../../../src/stdio/index.ts"

const [program, script, mode] = process.argv.slice(2)
if (!program || !script) throw new Error("usage: stdio-front.js <program> <worker script> [no-read]")
const step = (name: string, value: unknown) => console.log(`${name} ${JSON.stringify(value)}`)
if (mode === "no-read") {
  const limits = { max_output_queue: 256 * 1024, backpressure_timeout_sec: 0.3 }
  const bus = StdioBus.fromConfig({ pools: [{ id: "w", command: program, args: [script, "no-read"] }], limits })
  await bus.start()
  const params = { pad: "y".repeat(16 * 1024) }
  const outcomes = Array.from({ length: 400 }, () => bus.request("x", params, { timeoutMs: 0 }).catch((e: Error) => e))
  const settled = await Promise.all(outcomes.slice(100))
  step("refused", settled.filter((e) => e instanceof BackpressureError).length)
  step("queued", bus.stats().pools[0]!.instances[0]!.queuedBytes)
  await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
  process.exit(0)
}
const bus = StdioBus.fromConfig({ pools: [{ id: "w", command: program, args: [script, "echo"], instances: 2 }] })
const pids = () => bus.stats().pools[0]!.instances.map((i) => i.pid)
const until = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 10))
}
const logged: string[] = []
bus.on("log", (e) => logged.push(e.line))
await bus.start()
try {
  const first = pids()
  const answers = (await Promise.all(Array.from({ length: 32 }, (_, i) => bus.request("echo", { i })))) as {
    echo: { i: number }
    pid: number
  }[]
  step("echoed", { own: answers.every((a, i) => a.echo.i === i), pids: [...new Set(answers.map((a) => a.pid))].sort() })
  step("started", first)

  await bus.request("log", { lines: ["a line on stderr", "and another"] })
  await until(() => logged.includes("and another"))
  step("logged", logged)

  const held = Array.from({ length: 8 }, () =>
    bus.request("ignore").then(
      () => "answered",
      (e: Error) => e.name,
    ),
  )
  await until(() => bus.stats().pools[0]!.instances.reduce((n, i) => n + i.inFlight, 0) === 8)
  for (const pid of first) process.kill(pid, "SIGKILL")
  step("settled", await Promise.all(held))
  await until(() => pids().every((pid) => pid !== 0 && !first.includes(pid)))
  step("restarted", pids())

  await bus.reload("w")
  step("reloaded", pids())
  step("answered", ((await bus.request("echo", "after")) as { echo: string }).echo)
} finally {
  await bus.stop()
}
step("stopped", bus.state)
process.exit(0)
