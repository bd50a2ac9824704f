// Typed RPC between runtimes (issue 67, docs/PROTOCOL.md §6.1.1): every value a call may carry (rpc-values.ts)
// crosses both ways, as arguments checked where they arrive and as results checked where they come back, between a
// Bun front and a Node 26 worker, a Node front and a Bun worker, Node and Node, and Bun and Bun. A value no encoding
// carries is a DataCloneError for that call only, and the worker goes on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SlotBus } from "../../src/index.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { bunChild, busName, type Child, spawn, stopAll } from "../support/helpers.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"
import { allCrossed, crossAll, type PeerApi } from "../support/runtime/rpc-values.ts"

const node = findNode()
if (!node) console.log(`skipping the Node RPC tests: no Node >= 26.1 here (${NODE_INSTALL})`)

let peer: ReturnType<typeof buildForNode> | undefined
let lib: string
beforeAll(async () => {
  lib = await libraryPath()
  if (node !== null) peer = buildForNode("rpc-peer.ts")
})
afterAll(async () => {
  await stopAll()
  peer?.remove()
})

/** rpc-peer under Node, with the library this process loaded; waits for its line `ready`. */
async function underNode(name: string, role: "worker" | "front", ready: RegExp): Promise<Child> {
  const child = spawn([node!, ...nodeFlags(node!), peer!.entry, name, role], {
    env: { ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" },
  })
  await child.waitLine(ready, 30_000).catch((e) => {
    throw new Error(`rpc-peer ${role} under Node did not start: ${e}\n${child.output}`)
  })
  return child
}
const underBun = async (name: string, role: "worker" | "front", ready: RegExp): Promise<Child> => {
  const child = bunChild("runtime/rpc-peer.ts", [name, role])
  await child.waitLine(ready, 30_000)
  return child
}

/** Every case through a worker of `worker`'s runtime, from a front in this (Bun) process. */
async function fromBunFront(worker: typeof underNode) {
  const bus = await SlotBus.listen(busName("rpc-cross"))
  try {
    const w = await worker(bus.name, "worker", /^ready$/)
    await bus.waitForWorkers(1, { timeoutMs: 30_000 })
    expect(await crossAll(bus.remote<PeerApi>())).toEqual(allCrossed())
    await w.kill()
  } finally {
    await bus.close({ drain: false })
  }
}

/** Every case from a front under Node, through a worker of `worker`'s runtime: the lines the front printed. */
async function fromNodeFront(worker: typeof underNode) {
  const name = busName("rpc-cross")
  const front = await underNode(name, "front", /^listening$/)
  try {
    const w = await worker(name, "worker", /^ready$/)
    await front.waitLine(/^done$/, 120_000).catch((e) => {
      throw new Error(`the Node front did not finish: ${e}\n${front.output}`)
    })
    const lines = front.lines.slice(front.lines.indexOf("listening") + 1, front.lines.indexOf("done"))
    expect(lines).toEqual(allCrossed())
    expect(await front.exited).toBe(0)
    await w.kill()
  } finally {
    await front.kill()
  }
}

test(
  "Bun front, Bun worker: every value crosses both ways; a refused one fails its call only",
  () => fromBunFront(underBun),
  120_000,
)

describe.skipIf(node === null)("between Bun and Node 26", () => {
  test(
    "Bun front, Node worker: every value crosses both ways; a refused one fails its call only",
    () => fromBunFront(underNode),
    120_000,
  )

  test(
    "Node front, Bun worker: every value crosses both ways; a refused one fails its call only",
    () => fromNodeFront(underBun),
    120_000,
  )

  test(
    "Node front, Node worker: every value crosses both ways; a refused one fails its call only",
    () => fromNodeFront(underNode),
    120_000,
  )
})
