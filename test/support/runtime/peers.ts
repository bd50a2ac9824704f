// The runtimes a test's peer processes run under (issue 67): Bun, and Node 26 when there is one (else the Node row
// skips with the install line). A fixture of test/support runs as it is under Bun, and built to JavaScript once per
// test file under Node (removeNodeBuilds in the file's afterAll).
import { join } from "node:path"
import { libraryPath } from "../../../src/native/lib-path.ts"
import { type Child, FIXTURES, type SpawnOptions, spawn } from "../helpers.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "./node.ts"

export type PeerRuntime = "bun" | "node"
export const PEER_RUNTIMES: PeerRuntime[] = ["bun", "node"]

const node = findNode()

/** Why a peer cannot run under `runtime` here (with the install line), or null. */
export function peerSkip(runtime: PeerRuntime): string | null {
  return runtime === "node" && node === null ? `no Node >= 26.1 here: ${NODE_INSTALL}` : null
}

const builds = new Map<string, ReturnType<typeof buildForNode>>()

/** Removes the fixtures built for Node by this test file. */
export function removeNodeBuilds(): void {
  for (const b of builds.values()) b.remove()
  builds.clear()
}

/**
 * Runs `fixture` (a path under test/support) with `args` under `runtime`, after `under` (a command that execs the
 * rest: `sh -c 'trap "" INT; exec "$@"' sh`). Under Node: with this process's libslotbus (SLOTBUS_LIB) and without
 * node:ffi's ExperimentalWarning.
 */
export async function peerChild(
  runtime: PeerRuntime,
  fixture: string,
  args: string[],
  opts: SpawnOptions = {},
  under: string[] = [],
): Promise<Child> {
  if (runtime === "bun") return spawn([...under, process.execPath, join(FIXTURES, fixture), ...args], opts)
  if (node === null) throw new Error(`no Node >= 26.1 here: ${NODE_INSTALL}`)
  let built = builds.get(fixture)
  if (!built) builds.set(fixture, (built = buildForNode(fixture)))
  // warnings off unless the test's env says otherwise (node:ffi's ExperimentalWarning at each start)
  const env = { NODE_NO_WARNINGS: "1", ...(opts.env ?? process.env), SLOTBUS_LIB: await libraryPath() }
  return spawn([...under, node, ...nodeFlags(node), built.entry, ...args], { ...opts, env })
}
