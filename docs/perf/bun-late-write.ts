// Bun.serve, late 40 KB answers: bun bun-late-write.ts <sync|await|late|stream> [requests] [bytes]; STRACE=1 counts
const [mode = "late", n = "2000", size = "40000", role] = process.argv.slice(2)
const cpu = () => process.cpuUsage().user + process.cpuUsage().system
if (role === "serve") {
  const bytes = new TextEncoder().encode("x".repeat(Number(size)))
  const whole = () => new Response(bytes, { headers: { "content-type": "text/html" } }) // a string: the same
  const ready = () => new ReadableStream({ start: (c) => (c.enqueue(bytes), c.close()) }) // all there, closed
  const answers: Record<string, () => Response | Promise<Response>> = {
    sync: whole, // returned from the callback
    await: async () => (await null, whole()), // resolved in the callback's microtask drain
    late: () => new Promise((resolve) => setImmediate(() => resolve(whole()))), // one event-loop turn later
    stream: () => new Promise((resolve) => setImmediate(() => resolve(new Response(ready())))), // as late
  }
  const fetch = (req: Request) => (req.url.endsWith("/cpu") ? Response.json(cpu()) : answers[mode]!())
  console.log(Bun.serve({ port: 0, fetch }).port)
  process.stdin.on("data", () => process.exit(0)) // the client is done
} else {
  const argv = [process.execPath, import.meta.path, mode, n, size, "serve"]
  const cmd = process.env.STRACE ? ["strace", "-f", "-c", "-e", "trace=sendto,sendmsg,writev,write", ...argv] : argv
  const server = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe" }) // its first line: its port
  const port = new TextDecoder().decode((await server.stdout.getReader().read()).value).trim()
  const get = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).text()
  for (let i = 0; i < 200; i++) await get("/") // warm up
  const [s0, c0] = [Number(await get("/cpu")), cpu()]
  for (let i = 0; i < Number(n); i++) await get("/")
  const [s1, c1] = [Number(await get("/cpu")), cpu()]
  server.stdin.write("done\n"), await server.exited
  const per = (us: number) => (us / Number(n)).toFixed(1)
  console.log(`${mode}, ${size} B: server ${per(s1 - s0)} µs CPU a request, client ${per(c1 - c0)}`)
}
