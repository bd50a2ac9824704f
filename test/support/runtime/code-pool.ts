// A front (pool-front.ts) under Bun or Node whose pool's workers (node-worker.ts, of the front's runtime) run the code
// in a file they read at each start: a test changes the file to make a restart, a reload or a crash run other code.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { busName, type Child, FIXTURES, until } from "../helpers.ts"
import { buildForNode, findNode, nodeFlags } from "./node.ts"
import { type PeerRuntime, peerChild } from "./peers.ts"

let nodeWorker: ReturnType<typeof buildForNode> | undefined
const dirs: string[] = []

/** test/support/runtime/node-worker.ts under `runtime`, serving `name`. */
function workerCommand(runtime: PeerRuntime, name: string): string[] {
  if (runtime === "bun") return [process.execPath, join(FIXTURES, "runtime", "node-worker.ts"), name]
  const node = findNode()!
  nodeWorker ??= buildForNode("node-worker.ts")
  return [node, ...nodeFlags(node), nodeWorker.entry, name]
}

/**
 * The front under `runtime` with `n` workers, whose code is `code` (SLOTBUS_TEST_CODE_FILE), once it listens: the
 * child, its bus name, the code file and its workers' pids.
 */
export async function codePoolFront(
  runtime: PeerRuntime,
  n: number,
  code: string,
  restart: Record<string, number> = {},
): Promise<{ child: Child; name: string; file: string; pids: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-code-pool-"))
  dirs.push(dir)
  const file = join(dir, "code")
  writeFileSync(file, code)
  const name = busName("codepool")
  const pool = { env: { SLOTBUS_TEST_CODE_FILE: file }, restart }
  const args = [name, String(n), JSON.stringify(workerCommand(runtime, name)), JSON.stringify({ pool })]
  const child = await peerChild(runtime, "runtime/pool-front.ts", args, { stdin: "pipe" })
  const [, pids] = await child.waitLine(/^listening ([\d,]+)$/, 60_000)
  return { child, name, file, pids: pids!.split(",").map(Number) }
}

/** Removes the code files and the Node build (each test file's afterAll, after its processes ended). */
export function removeCodePools() {
  nodeWorker?.remove()
  nodeWorker = undefined
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

/** Writes `verb` to the front's stdin (pool-front.ts's verbs) and waits for its answer, the first line after matching `re`. */
export async function ask(f: Child, verb: string, re: RegExp): Promise<RegExpMatchArray> {
  const before = f.lines.length
  f.write(`${verb}\n`)
  await until(() => f.lines.slice(before).some((l) => re.test(l)), `the front's answer to "${verb}"`, 60_000)
  return re.exec(f.lines.slice(before).find((l) => re.test(l))!)!
}
