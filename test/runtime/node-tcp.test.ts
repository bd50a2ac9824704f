// TCP through the runtime room under Node 26 (src/runtime/node/net.ts, issue 67): the runtime's listen and connect on
// a port, and the feature that listens on TCP, a stdio bus's tcp: listener (token first, then lines), in a Node
// process (test/support/runtime/node-tcp.ts), reached from Bun as `slotbus stdio connect` reaches it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { libraryPath } from "../../src/native/lib-path.ts"
import { type Child, spawn, stopAll } from "../support/helpers.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping the Node TCP tests: no Node >= 26.1 here (${NODE_INSTALL})`)

let built: ReturnType<typeof buildForNode> | undefined
let lib: string
beforeAll(async () => {
  if (node === null) return
  built = buildForNode("node-tcp.ts")
  lib = await libraryPath()
})
afterAll(async () => {
  await stopAll()
  built?.remove()
})

/** A line-reading TCP client from Bun: what it received, and whether the server closed it. */
async function client(port: number) {
  let text = ""
  const ended = Promise.withResolvers<void>()
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_s, b) => void (text += new TextDecoder().decode(b)), close: () => ended.resolve() },
  })
  return { socket, ended: ended.promise, lines: () => text.split("\n").filter((l) => l !== "") }
}

describe.skipIf(node === null)("TCP in a Node process", () => {
  test("the runtime's listen/connect on a port, and a stdio bus's tcp: listener: token, lines, half-close", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slotbus-node-tcp-"))
    let peer: Child | undefined
    try {
      peer = spawn([node!, ...nodeFlags(node!), built!.entry, dir], {
        env: { ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" },
        stdin: "pipe",
      })
      const runtime = await peer.waitLine(/^runtime (.*)$/, 30_000).catch((e) => {
        throw new Error(`${e}\n${peer!.output}`)
      })
      expect(JSON.parse(runtime[1]!)).toEqual({
        port: true,
        again: "EADDRINUSE",
        echo: "port?",
        closed: true,
        refused: ["connectError ECONNREFUSED", "rejected ECONNREFUSED"],
      })
      const [, portText, tokenFile] = (await peer.waitLine(/^listening (\d+) (\S+)$/, 30_000)) as string[]
      const port = Number(portText)
      // its own client, on the runtime's TCP connect, was answered
      const self = await peer.waitLine(/^self (.*)$/, 30_000)
      expect(JSON.parse(self[1]!)).toEqual({
        jsonrpc: "2.0",
        id: 1,
        result: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      })

      // a wrong token: refused with the token file named, then closed
      const wrong = await client(port)
      wrong.socket.write(`${JSON.stringify({ jsonrpc: "2.0", method: "slotbus/auth", params: { token: "nope" } })}\n`)
      await wrong.ended
      expect(wrong.lines()).toHaveLength(1)
      expect(JSON.parse(wrong.lines()[0]!).error.message).toContain(`authentication failed`)
      expect(JSON.parse(wrong.lines()[0]!).error.message).toContain(tokenFile!)

      // the token, two lines, then a half-close: both answered, then the listener closes it
      const token = readFileSync(tokenFile!, "utf8").trim()
      const right = await client(port)
      right.socket.write(`${JSON.stringify({ jsonrpc: "2.0", method: "slotbus/auth", params: { token } })}\n`)
      right.socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: 7, method: "a" })}\n`)
      right.socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: 8, method: "b" })}\n`)
      right.socket.shutdown()
      await right.ended
      expect(right.lines().map((l) => JSON.parse(l).id)).toEqual([7, 8])

      peer.write("close\n")
      await peer.waitLine(/^closed false$/, 30_000) // the token file went with the listener
      expect(await peer.exited).toBe(0)
    } finally {
      await peer?.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
