// closeGracefully under keep-alive load, as a user's front meets SIGTERM: Bun.serve under Bun and node:http with
// nodeHandler under Node and under Bun, over a pool of two workers, 32 keep-alive connections from a raw-socket
// client. Every request sent is answered 200, every connection is told `Connection: close`, and the front exits 0.
// The figures (answers, how long from the front's last answer to closed) are printed, not asserted.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, ECHO_WORKER, FIXTURES, spawn, stopAll, until } from "../support/helpers.ts"
import { keepAliveLoad } from "../support/runtime/keep-alive-load.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping closeGracefully under Node: no Node >= 26.1 here (${NODE_INSTALL})`)
let built: ReturnType<typeof buildForNode> | undefined
let lib = ""
beforeAll(async () => {
  if (node === null) return
  built = buildForNode("graceful-front.ts")
  lib = await libraryPath()
})
afterAll(async () => {
  await stopAll()
  built?.remove()
})

const CONNECTIONS = 32

async function sigtermUnderLoad(runtime: "bun" | "node", server: "bun" | "node" | "own", reconnect: boolean) {
  const args = [busName("graceful"), server, process.execPath, ECHO_WORKER]
  const front =
    runtime === "bun"
      ? spawn([process.execPath, join(FIXTURES, "runtime/graceful-front.ts"), ...args])
      : spawn([node!, ...nodeFlags(node!), built!.entry, ...args], {
          env: { ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" },
        })
  const port = Number((await front.waitLine(/^ready (\d+)$/, 30_000))[1])
  const load = keepAliveLoad(port, CONNECTIONS, reconnect)
  try {
    await until(() => load.result.answered >= 1000, "1000 answers under load", 30_000)
    front.signal("SIGTERM")
    expect(await front.exited).toBe(0)
    let ended = false
    void load.ended.then(() => (ended = true))
    await until(() => ended, "every connection ended", 10_000)
  } finally {
    await load.stop()
  }
  const r = load.result
  const closed = front.lines.find((l) => l.startsWith("closed "))
  console.log(
    `${{ bun: "Bun.serve", node: "node:http", own: "node:http answering itself" }[server]} under ${runtime}, ${reconnect ? "reconnecting" : "leaving"} client: ${r.answered} answered, ${r.failed.length} failed, ${r.toldToClose} told to close, ${r.refused} refused; closed ${closed?.slice(7)} ms after the last answer`,
  )
  expect(r.failed).toEqual([])
  expect(r.toldToClose).toBeGreaterThanOrEqual(CONNECTIONS)
}

describe("a SIGTERM'd front closed with closeGracefully under keep-alive load fails no request", () => {
  test("Bun.serve under Bun, its clients leaving when told", () => sigtermUnderLoad("bun", "bun", false), 90_000)
  test("node:http under Bun, its clients leaving when told", () => sigtermUnderLoad("bun", "node", false), 90_000)
  test.skipIf(node === null)(
    "node:http under Node, its clients leaving when told",
    () => sigtermUnderLoad("node", "node", false),
    90_000,
  )
  // an app's own routes (Express's, Fastify's) answer without nodeHandler: closeGracefully tells their clients too
  test(
    "node:http answering itself under Bun, its clients leaving when told",
    () => sigtermUnderLoad("bun", "own", false),
    90_000,
  )
  test.skipIf(node === null)(
    "node:http answering itself under Node, its clients leaving when told",
    () => sigtermUnderLoad("node", "own", false),
    90_000,
  )
  test.skipIf(node === null)(
    "node:http under Node, its clients connecting again (refused: it no longer listens)",
    () => sigtermUnderLoad("node", "node", true),
    90_000,
  )
})
