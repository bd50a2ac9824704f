// node:cluster's fronts (test/runtime/node-cluster.test.ts), run under Node 26 by test/support/runtime/peers.ts.
// Usage: cluster-front.js <bus-name> <worker command as JSON> <status directory> <port>
// The primary forks two cluster workers and prints their lines. Each is a front: SlotBus.listen(<bus-name>,
// { shared: true }), superviseWorkers(2 of <command>), a node:http server on <port> of 127.0.0.1, which the cluster
// shares, and serveStatus on <status directory>/front-<id>.sock; it prints "front <pid> <port>"
// then "status <pid> ok" or "status <pid> failed <error>". Its HTTP: /pool answers {front, state, running, pids}
// of its supervisor; anything else asks the bus for a worker's pid ("?pid ") and answers "<front pid> <worker pid>"
// (a 504 "<front pid> <error name>" when that fails). A line "close" on the primary's stdin closes every front
// (server, status, pool, bus), and the primary exits 0 once both exited 0.
import cluster from "node:cluster"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { SlotBus, superviseWorkers } from "../../../src/index.ts"
import { serveStatus } from "../../../src/status/index.ts"

const [name, command, statusDir, port] = process.argv.slice(2)
if (!name || !command || !statusDir || !port)
  throw new Error("usage: cluster-front.js <name> <command as JSON> <dir> <port>")

if (cluster.isPrimary) {
  const codes: (number | null)[] = []
  for (let i = 0; i < 2; i++) cluster.fork()
  cluster.on("message", (_, line: string) => console.log(line))
  cluster.on("exit", (w, code, signal) => {
    console.log(`exit ${w.process.pid} ${code} ${signal}`)
    codes.push(code)
    if (codes.length === 2) process.exit(codes.every((c) => c === 0) ? 0 : 1)
  })
  for await (const line of createInterface({ input: process.stdin }))
    if (line === "close") for (const w of Object.values(cluster.workers ?? {})) w?.send("close")
} else {
  const say = (line: string) => process.send!(line)
  const bus = await SlotBus.listen(name, { shared: true })
  const pool = superviseWorkers(bus, { command: JSON.parse(command) as string[], instances: 2 })
  const server = createServer(async (req, res) => {
    if (req.url === "/pool") {
      const pids = pool.instances.map((i) => i.pid)
      res.end(JSON.stringify({ front: process.pid, state: pool.state, running: pool.runningCount, pids }))
      return
    }
    try {
      const pid = new TextDecoder().decode(await bus.call("?pid ", { timeoutMs: 30_000 }))
      res.end(`${process.pid} ${pid}`)
    } catch (e) {
      res.statusCode = 504
      res.end(`${process.pid} ${(e as Error).name}`)
    }
  })
  await new Promise<void>((r) => server.listen(Number(port), "127.0.0.1", r))
  say(`front ${process.pid} ${(server.address() as AddressInfo).port}`)
  const status = await serveStatus([bus], { unix: join(statusDir, `front-${cluster.worker!.id}.sock`) }).then(
    (s) => (say(`status ${process.pid} ok`), s),
    (e: Error) => (say(`status ${process.pid} failed ${e.message}`), undefined),
  )
  process.on("message", async (m) => {
    if (m !== "close") return
    server.close()
    server.closeAllConnections()
    await status?.stop()
    await pool.stop()
    await bus.close()
    process.exit(0)
  })
}
