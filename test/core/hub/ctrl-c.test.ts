// Ctrl-C in a terminal sends SIGINT to the whole foreground process group: the front and, were they in its group,
// its supervised workers. A front that takes Ctrl-C as the examples do (the pool drained, then stopped) must get to
// drain: its workers run in a process group of their own, so the terminal's SIGINT reaches the front alone. Here the
// front leads a group of its own (spawned detached, as a shell starts a job) and the test sends SIGINT to that group,
// as the terminal does; Bun and Node fronts, Bun and Node workers.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { libraryPath } from "../../../src/native/lib-path.ts"
import { alive, busName, FIXTURES, stopAll, until } from "../../support/helpers.ts"
import { buildForNode, findNode, nodeFlags } from "../../support/runtime/node.ts"
import { PEER_RUNTIMES, type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

const node = findNode()
let nodeWorker: ReturnType<typeof buildForNode> | undefined
afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
  nodeWorker?.remove()
})

/** test/support/runtime/node-worker.ts for `name` under `runtime`. */
function workerCommand(runtime: PeerRuntime, name: string): string[] {
  if (runtime === "bun") return [process.execPath, join(FIXTURES, "runtime", "node-worker.ts"), name]
  nodeWorker ??= buildForNode("node-worker.ts")
  return [node!, ...nodeFlags(node!), nodeWorker.entry, name]
}

const cases = PEER_RUNTIMES.flatMap((front) => PEER_RUNTIMES.map((worker) => [front, worker] as const))

describe.each(cases)("a %s front's pool of %s workers", (front, worker) => {
  const skip = peerSkip(front) ?? peerSkip(worker)
  test.skipIf(skip !== null)(
    "Ctrl-C (SIGINT to the front's process group): the requests its workers hold are answered, it exits 0, no worker is left",
    async () => {
      const name = busName("ctrlc")
      const dir = mkdtempSync(join(tmpdir(), "ctrl-c-"))
      const release = join(dir, "release")
      const command = JSON.stringify(workerCommand(worker, name))
      const f = await peerChild(front, "runtime/pool-front.ts", [name, "2", command], {
        stdin: "pipe",
        detached: true,
        env: { ...process.env, SLOTBUS_LIB: await libraryPath() }, // a Node worker's libslotbus: this checkout's
      })
      let pids: number[] = []
      try {
        pids = (await f.waitLine(/^listening (\d+),(\d+)$/, 60_000)).slice(1).map(Number)
        for (const [i, pid] of pids.entries())
          await f.waitLine(new RegExp(`^\\[${name}#${i} pid ${pid}\\] ready `), 60_000)
        for (let i = 0; i < 8; i++) f.write(`call held${i} ?until ${release}\n`)
        const inFlight = () =>
          f.lines
            .filter((l) => l.startsWith("workers "))
            .at(-1)
            ?.slice(8)
            .split(",")
            .reduce((n, w) => n + Number(w.split(":")[1] ?? 0), 0)
        await until(() => inFlight() === 8 || (f.write("workers\n"), false), "8 requests in flight", 30_000, 100)

        f.groupSignal("SIGINT")
        await f.waitLine(/^interrupted$/, 10_000)
        writeFileSync(release, "")
        const settled = await Promise.all(
          Array.from({ length: 8 }, (_, i) => f.waitLine(new RegExp(`^(?:answer|failed) held${i}\\b.*$`), 30_000)),
        )
        // before: each worker died of the terminal's SIGINT holding its requests: "failed held<i> WorkerGoneError"
        for (const [i, m] of settled.entries()) expect(m[0]).toMatch(new RegExp(`^answer held${i} released \\d+$`))
        expect(await f.exited).toBe(0)
        await until(() => pids.every((pid) => !alive(pid)), "both workers gone", 20_000)
      } finally {
        rmSync(dir, { recursive: true, force: true })
        await f.kill()
        for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL")
      }
    },
    120_000,
  )
})
