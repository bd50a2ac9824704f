// What reading a Bun.serve Request's signal and watching it costs the front, Bun 1.4.5, no slotbus:
//   bun docs/perf/bun-signal.ts plain|signal   (prints its port; load it with wrk -t1 -c16, read its CPU in /proc)
// Both answer one event-loop turn late, as a front waiting for a worker does; "signal" also reads req.signal (Bun
// makes the AbortSignal then) and adds and removes an abort listener, as bus.fetch did for every request.
// docs/perf/real-work.md, round twelve: a median +4.4 µs of the front's CPU per request in 6 interleaved pairs.
const watch = process.argv[2] === "signal"
const once = { once: true }
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (req) => {
    const signal = watch ? req.signal : null
    const onAbort = () => {}
    signal?.addEventListener("abort", onAbort, once)
    return new Promise<Response>((resolve) =>
      setImmediate(() => {
        signal?.removeEventListener("abort", onAbort)
        resolve(Response.json({ id: 7, name: "item 7" }))
      }),
    )
  },
})
console.log(server.port)
