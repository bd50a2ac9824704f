// The Node fronts of `slotbus bench carry` (issue 67): the command that starts node-front.ts under Node 26, with the
// slotbus of the measured tree built to JavaScript for it once per run; without a Node >= 26.1 an error carrying
// the install line (the variant's "could not run" line).
import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { detectPlatform, libraryFile } from "../../src/native/lib-path.ts"
import { benchNode, buildForNode, nodeFlags } from "../lib/node.ts"

export const NODE_VARIANTS = ["node-direct", "node-fetch", "node-proxy"] as const

interface Built {
  node: string
  front: string
  library: string
  remove(): void
}

let built: Built | null = null

/** The command and environment of a Node front of `variant` with `workers` workers, loading the library of `root`. */
export function nodeFront(
  variant: string,
  workers: number,
  root: string,
): { cmd: string[]; env: Record<string, string | undefined> } {
  const found = benchNode()
  if ("skip" in found) throw new Error(found.skip)
  if (!built) {
    const b = buildForNode([join(import.meta.dir, "node-front.ts"), join(root, "src", "index.ts")])
    built = { node: found.node, front: b.entries[0]!, library: b.entries[1]!, remove: b.remove }
  }
  const platform = detectPlatform()
  return {
    cmd: [
      built.node,
      ...nodeFlags(built.node),
      built.front,
      variant,
      String(workers),
      built.library,
      process.execPath,
      join(import.meta.dir, "worker.ts"),
      root,
    ],
    env: {
      ...process.env,
      SLOTBUS_LIB: process.env.SLOTBUS_LIB ?? join(root, "prebuilds", platform, libraryFile(platform)),
      NODE_NO_WARNINGS: "1", // node:ffi's ExperimentalWarning
    },
  }
}

/** Removes the JavaScript built for Node, at the end of a run. */
export function removeNodeBuild(): void {
  built?.remove()
  built = null
}

/** "v26.12.1 at <path>": the Node the fronts run, for the report; null without one. */
export function nodeVersion(): string | null {
  const found = benchNode()
  if ("skip" in found) return null
  return `${execFileSync(found.node, ["--version"], { encoding: "utf8" }).trim()} at ${found.node}`
}
