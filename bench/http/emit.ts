// emit → SSE client latency through the HTTP hub, the same run for both paths: `app.emit` (the worker publishes
// into the hub's events topic) and the HTTP POST it replaced (`app.send("emit", …)`, still the fallback).
//   bun bench/http/emit.ts [--n 400] [--gap-ms 2]
// The hub and the SSE client (fetch) run in this process, the worker in a child; each event carries the
// monotonic clock at its emit (CLOCK_MONOTONIC through libc: Bun's hrtime is per process).
import { parseArgs } from "node:util"
import { createHub, hubWorker } from "../../src/http/index.ts"
import { monoNs } from "../lib/clock.ts"

if (process.argv[2] === "--worker") {
  const app = hubWorker(process.argv[3]!, "emitter", { token: process.argv[4] })
  app.post("/timed", async (req) => {
    const n = Number(req.query.get("n")),
      gap = Number(req.query.get("gap")),
      http = req.query.get("via") === "http"
    for (let i = 0; i < n; i++) {
      const d = String(monoNs())
      if (http) void app.send("emit", { type: "timed", data: d })
      else void app.emit("timed", d)
      await Bun.sleep(gap)
    }
    return new Response("done")
  })
  await app.run()
  console.log("ready")
} else {
  const { values } = parseArgs({
    options: { n: { type: "string", default: "400" }, "gap-ms": { type: "string", default: "2" } },
  })
  const n = Number(values.n),
    gap = Number(values["gap-ms"])
  await using hub = await createHub({ port: 0, quiet: true })
  const child = Bun.spawn([process.execPath, import.meta.path, "--worker", hub.url, hub.token], {
    stdout: "pipe",
    stderr: "inherit",
  })
  const reader = child.stdout.getReader()
  while (!new TextDecoder().decode((await reader.read()).value).includes("ready"));
  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!
  for (const via of ["topic", "http", "topic", "http"]) {
    const abort = new AbortController()
    const res = await fetch(`${hub.url}/events?types=timed`, { signal: abort.signal })
    const body = res.body!.getReader()
    const lat: number[] = []
    const done = fetch(`${hub.url}/timed?via=${via}&n=${n}&gap=${gap}`, { method: "POST" })
    let buf = ""
    while (lat.length < n) {
      const { value } = await body.read()
      const now = monoNs()
      buf += new TextDecoder().decode(value)
      for (let m = buf.match(/data: (\d+)\n/); m; m = buf.match(/data: (\d+)\n/)) {
        lat.push((now - Number(m[1]!)) / 1000)
        buf = buf.slice(m.index! + m[0].length)
      }
    }
    await done
    abort.abort()
    lat.sort((a, b) => a - b)
    console.log(
      `${via.padEnd(5)} emit→SSE client, ${n} events ${gap} ms apart: p50 ${pct(lat, 50).toFixed(0)} µs, p90 ${pct(lat, 90).toFixed(0)} µs, p99 ${pct(lat, 99).toFixed(0)} µs`,
    )
  }
  child.kill()
}
