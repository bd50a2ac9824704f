// A front process of a name (test/support/core/shared-front.ts) driven from a test: started, asked over its stdin, and the
// processes a front started found by their environment (SLOTBUS_FRONT_PARENT, docs/PROTOCOL.md §15.4).
import { readdirSync, readFileSync } from "node:fs"
import { alive, type Child } from "../helpers.ts"
import { buildForNode, findNode, nodeFlags } from "../runtime/node.ts"
import { peerChild, type PeerRuntime } from "../runtime/peers.ts"

export interface FrontChild {
  child: Child
  /** Its index among the name's fronts. */
  index: number
  /** Writes `cmd` and resolves with the groups of the first line after the last answer that matches `re`. */
  ask(cmd: string, re: RegExp): Promise<string[]>
}

/**
 * A front of `name` (args: shared-front.ts's flags), pushed on `children`; resolves once it listens. Under Node its
 * pool's workers are test/support/runtime/node-worker.ts `--fetch` under Node (its /echo answers the body), unless
 * args give a `--command` (nodeWorkerCommand's, with flags of its own).
 */
export async function frontChild(
  name: string,
  args: string[],
  children: Child[],
  runtime: PeerRuntime = "bun",
): Promise<FrontChild> {
  if (runtime === "node" && !args.some((a) => a.startsWith("--command=")))
    args = [...args, `--command=${JSON.stringify(nodeWorkerCommand(name))}`]
  const child = await peerChild(runtime, "core/shared-front.ts", [name, ...args], { stdin: "pipe" })
  children.push(child)
  const m = await child.waitLine(/^ready (\d+) (\S+)$/, 20_000)
  let seen = child.lines.length
  const ask = async (cmd: string, re: RegExp) => {
    const from = seen
    child.write(`${cmd}\n`)
    const line = await child.whileAlive(
      (async () => {
        for (let n = from; ; n++) {
          const l = await child.line(n, 60_000)
          const hit = l.match(re)
          if (hit) {
            seen = n + 1
            return hit.slice(1)
          }
        }
      })(),
      `front ${child.pid}`,
    )
    return line
  }
  return { child, index: Number(m[2]), ask }
}

/** The front's pool: its supervisor's state and its workers' pids. */
export async function poolOf(f: FrontChild): Promise<{ state: string; pids: number[] }> {
  const [state, list] = await f.ask("pool", /^pool (\S+) ?(.*)$/)
  return { state: state!, pids: list ? list.split(",").filter(Boolean).map(Number) : [] }
}

/** The pids of the workers connected to the front, once there are n. */
export async function workerPids(f: FrontChild, n: number): Promise<number[]> {
  const [list] = await f.ask(`wait ${n}`, /^workers (.*)$/)
  return list!.split(",").map(Number)
}

/** The live processes started by the front `parent` (SLOTBUS_FRONT_PARENT in their environment, §15.4). */
export function startedBy(parent: number): number[] {
  const out: number[] = []
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue
    try {
      if (readFileSync(`/proc/${d}/environ`, "latin1").split("\0").includes(`SLOTBUS_FRONT_PARENT=${parent}`))
        out.push(Number(d))
    } catch {} // gone meanwhile
  }
  return out.filter(alive)
}

let nodeWorker: ReturnType<typeof buildForNode> | undefined

/** node-worker.ts `--fetch` of `name` under Node, built once per test file (removeFrontBuilds in its afterAll). */
export function nodeWorkerCommand(name: string, ...flags: string[]): string[] {
  const node = findNode()
  if (node === null) throw new Error("no Node >= 26.1 here")
  nodeWorker ??= buildForNode("node-worker.ts")
  return [node, ...nodeFlags(node), nodeWorker.entry, name, "--fetch", ...flags]
}

/** Removes what frontChild built for Node fronts (and peers.ts's builds). */
export function removeFrontBuilds(): void {
  nodeWorker?.remove()
  nodeWorker = undefined
}
