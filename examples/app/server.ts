// The example app's server: a Bun.serve front door over two supervised slotbus workers, cache invalidation
// over a topic, a leased singleton job the workers contend for, and a pool of MCP servers. See README.md.
//   PORT=3000 bun examples/app/server.ts
import { dirname, join } from "node:path"
import { closeGracefully, failureResponse, SlotBus, superviseWorkers } from "slotbus"
import { Topic } from "slotbus/events"
import { StdioBus } from "slotbus/stdio"

const NAME = process.env.APP_NAME ?? "example-app" // the bus, the topic and the contest share it
const WORKER = join(import.meta.dir, "worker.ts")
const EVERYTHING = join(
  dirname(Bun.resolveSync("@modelcontextprotocol/server-everything/package.json", import.meta.dir)),
  "dist",
  "index.js",
)

const bus = await SlotBus.listen(NAME, { slots: 16 })
const workers = superviseWorkers(bus, { command: [process.execPath, WORKER, NAME], instances: 2 })
const topic = await Topic.open(NAME)
// The job's holder announces each run on the topic; the server remembers the last one it heard of.
let lastRun: { pid: number; runs: number; token: string } | null = null
const jobEvents = topic.subscribe({ type: "job.ran" }, { idle: "park" })
void (async () => {
  for await (const ev of jobEvents) lastRun = ev.json()
})()
const mcp = StdioBus.fromConfig({
  pools: [{ id: "everything", command: process.execPath, args: [EVERYTHING, "stdio"] }],
})
await mcp.start()
await mcp.request("initialize", {
  protocolVersion: "2025-06-18",
  capabilities: {},
  clientInfo: { name: "example-app", version: "1" },
})
await mcp.notify("notifications/initialized")

const server = Bun.serve({
  port: Number(process.env.PORT ?? 3000),
  error: failureResponse, // a failed bus.fetch as its HTTP answer (413, 503, 504 …; JSON), not Bun's 500 page
  routes: {
    // request/response through shared memory: the worker answers, from its cache if it can
    "/square/:n": (req) => bus.fetch(req),
    "/cache/:key": (req) => bus.fetch(req),
    // cache invalidation: one publish reaches every worker process, however many there are
    "/invalidate/:key": {
      POST: (req) => Response.json({ id: topic.publish({ type: "cache.invalidate", data: req.params.key }) }),
    },
    "/job": () => Response.json(lastRun),
    "/echo": async (req) => {
      const message = new URL(req.url).searchParams.get("message") ?? ""
      const result = await mcp.request("tools/call", { name: "echo", arguments: { message } }, { timeoutMs: 10_000 })
      return Response.json(result)
    },
    "/workers": () => Response.json(bus.workers.map((w) => ({ pid: w.pid, requests: w.requests }))),
  },
})
console.log(`example app listening on ${server.url}`)

for (const sig of ["SIGTERM", "SIGINT"] as const)
  process.once(sig, async () => {
    await closeGracefully(server, { pool: workers, bus }) // requests in flight finish, then the workers stop
    jobEvents.close()
    await mcp.stop()
    topic.close()
    process.exit(0)
  })
