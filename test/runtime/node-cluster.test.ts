// node:cluster (docs/api.md, Several fronts): a primary forks two cluster workers, each a front on the port the
// cluster shares with SlotBus.listen(name, { shared: true }) and superviseWorkers. Node hands a cluster worker's
// listen to the primary unless it is exclusive, so the runtime's own sockets (the fronts' election, serveStatus on a
// unix socket) bind exclusive: one front is elected and runs the pool, both serve through its workers.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { alive, busName, eventually, freePort, stopAll, until } from "../support/helpers.ts"
import { buildForNode, findNode, nodeFlags } from "../support/runtime/node.ts"
import { peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const node = findNode()
const skip = peerSkip("node")
if (skip) console.log(`skipping the node:cluster test: ${skip}`)

const nodeWorker = node === null ? undefined : buildForNode("node-worker.ts")
afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
  nodeWorker?.remove()
})

interface PoolReport {
  front: number
  state: string
  running: number
  pids: number[]
}

/** GET on a connection of its own (the cluster's primary spreads connections over the fronts). */
async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { keepalive: false, headers: { connection: "close" } })
  return { status: res.status, body: await res.text() }
}

describe.skipIf(skip !== null)("node:cluster's workers as shared fronts", () => {
  test("one front runs the pool of 2, both fronts' requests are answered by it, serveStatus binds on unix", async () => {
    const name = busName("cluster")
    const dir = mkdtempSync(join(tmpdir(), "slotbus-cluster-"))
    const port = await freePort()
    const command = JSON.stringify([node!, ...nodeFlags(node!), nodeWorker!.entry, name])
    const primary = await peerChild("node", "runtime/cluster-front.ts", [name, command, dir, String(port)], {
      stdin: "pipe",
    })
    let poolPids: number[] = []
    let pids: number[] = []
    try {
      await until(() => primary.lines.filter((l) => l.startsWith("front ")).length === 2, "both fronts listen", 60_000)
      const fronts = primary.lines.filter((l) => l.startsWith("front ")).map((l) => l.split(" ").map(Number))
      pids = fronts.map(([, pid]) => pid!)
      expect(fronts.map(([, , p]) => p)).toEqual([port, port])

      // each front's supervisor, asked until both answered with the pool of one of them running both workers
      const reports = new Map<number, PoolReport>()
      await until(
        async () => {
          const r = JSON.parse((await get(port, "/pool")).body) as PoolReport
          reports.set(r.front, r)
          const all = [...reports.values()]
          return all.length === 2 && all.some((p) => p.state === "running" && p.running === 2)
        },
        "one front's pool runs 2 workers",
        60_000,
        100,
      )
      const states = [...reports.values()].map((r) => r.state).sort()
      expect(states).toEqual(["created", "running"])
      poolPids = [...reports.values()].find((r) => r.state === "running")!.pids
      expect(poolPids).toHaveLength(2)

      // requests through both fronts, each answered by a worker of that pool
      const answeredBy = new Map<number, Set<number>>(pids.map((p) => [p, new Set()]))
      await until(
        async () => {
          const { status, body } = await get(port, "/work")
          expect({ status, body }).toEqual({ status: 200, body: expect.stringMatching(/^\d+ \d+$/) })
          const [front, worker] = body.split(" ").map(Number)
          expect(poolPids).toContain(worker!)
          answeredBy.get(front!)!.add(worker!)
          return [...answeredBy.values()].every((s) => s.size > 0)
        },
        "both fronts answered a request",
        60_000,
        20,
      )

      // serveStatus({ unix }) in each cluster worker
      await until(() => primary.lines.filter((l) => l.startsWith("status ")).length === 2, "both status lines", 30_000)
      expect(primary.lines.filter((l) => l.startsWith("status ")).sort()).toEqual(
        pids.map((p) => `status ${p} ok`).sort(),
      )
      for (const id of [1, 2]) {
        const res = await fetch("http://localhost/status.json", { unix: join(dir, `front-${id}.sock`) })
        expect(res.status).toBe(200)
        expect(pids).toContain(((await res.json()) as { pid: number }).pid)
      }

      primary.write("close\n")
      expect(await primary.exited).toBe(0)
      expect(await eventually(() => [...pids, ...poolPids].every((p) => !alive(p)), 30_000)).toBe(true)
    } finally {
      await primary.kill()
      for (const p of [...pids, ...poolPids]) if (alive(p)) process.kill(p, "SIGKILL")
      rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)
})
