// The Node methods (issue 67): slotbus with a Node front or a Node worker or both, and Node's own ways (process.send,
// a worker_threads port, a unix socket) with both ends in Node. A Bun front is this process (a Transport); a Node
// front is a process of its own (../node/hub.ts, built to JavaScript once per run) that measures itself with
// measure.ts and sends its samples back. Without a Node >= 26.1 each skips with the install line.
import { join } from "node:path"
import { libraryPath } from "../../../src/native/lib-path.ts"
import { spawn } from "../../lib/child.ts"
import { parseCpuReport } from "../../lib/cpu.ts"
import { benchNode, buildForNode, nodeFlags } from "../../lib/node.ts"
import { EMPTY, SkipMethod, type Transport } from "../transport.ts"
import type { IdleCpu } from "../line-hub.ts"
import { type ChildHub, childHub } from "./child-hub.ts"
import { openBus } from "./slotbus.ts"

interface Built {
  /** node, its flags, and the built hub.js and worker.js */
  cmd: string[]
  hub: string
  worker: string
  env: Record<string, string | undefined>
  remove(): void
}

let built: Promise<Built> | null = null

/** Node and the built hub and worker, made on first use; skips the method when there is no Node. */
function node(): Promise<Built> {
  built ??= (async () => {
    const found = benchNode()
    if ("skip" in found) throw new SkipMethod(found.skip)
    const dir = join(import.meta.dir, "..", "node")
    const b = buildForNode([join(dir, "hub.ts"), join(dir, "worker.ts")])
    const env = {
      ...process.env,
      SLOTBUS_LIB: await libraryPath(),
      NODE_NO_WARNINGS: "1", // node:ffi's ExperimentalWarning
      SLOTBUS_BENCH_BUN: process.execPath,
      SLOTBUS_BENCH_BUN_WORKER: join(import.meta.dir, "slotbus.ts"),
    }
    return {
      cmd: [found.node, ...nodeFlags(found.node)],
      hub: b.entries[0]!,
      worker: b.entries[1]!,
      env,
      remove: b.remove,
    }
  })()
  // a skip is remembered (every Node method gives the same reason); a failed build is tried again by the next
  built.catch((e) => {
    if (!(e instanceof SkipMethod)) built = null
  })
  return built
}

/** Removes the JavaScript built for Node, at the end of a run. */
export async function removeNodeBuild(): Promise<void> {
  const b = await built?.catch(() => null)
  b?.remove()
  built = null
}

/** A Bun front (this process) and a Node worker, both adaptive. */
export async function openBunNode(): Promise<Transport> {
  const n = await node()
  return openBus(
    "adaptive",
    "the Node worker",
    (name) => spawn([...n.cmd, n.worker, "slotbus", name, "adaptive"], { env: n.env }),
    async (bus) => parseCpuReport(await bus.call(EMPTY)),
  )
}

/** A hub in Node (hub.ts) running `method`: slotbus-node, slotbus-bun, process.send, worker or unix. */
export async function openNodeHub(method: string, idle = "adaptive"): Promise<ChildHub> {
  const n = await node()
  return childHub([...n.cmd, n.hub, method, idle], n.env, `the Node hub (${method})`)
}

/** CPU seconds a parked Node hub and Node worker use while nothing is sent, over `ms`. */
export async function measureNodeIdle(ms: number): Promise<IdleCpu> {
  const d = await openNodeHub("slotbus-node", "park")
  try {
    return await d.idle(ms)
  } finally {
    await d.close()
  }
}
