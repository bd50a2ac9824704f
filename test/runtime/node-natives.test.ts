// The library's functions under Node: one object V8 reads inline. Built one `out[name] =` at a time it was a
// dictionary (V8 turns an object given more than a dozen keyed stores into one), and every call a Node hub made,
// sb_hub_poll, sb_hub_publish, …, first looked the function up through a LoadIC call (docs/perf/round-nine-node.md).
import { afterAll, expect, test } from "bun:test"
import { libraryPath } from "../../src/native/lib-path.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping the Node library-object test: no Node >= 26.1 here (${NODE_INSTALL})`)
const built = node ? buildForNode("node-natives.ts") : undefined
afterAll(() => built?.remove())

test.skipIf(!node)("under Node the library's functions are objects with fast properties", async () => {
  const run = Bun.spawnSync([node!, ...nodeFlags(node!), "--allow-natives-syntax", built!.entry], {
    env: { ...process.env, SLOTBUS_LIB: await libraryPath(), NODE_NO_WARNINGS: "1" },
  })
  expect(run.stderr.toString()).toBe("")
  expect(JSON.parse(run.stdout.toString())).toEqual({ native: true, leaseNative: true, topicNative: true })
})
