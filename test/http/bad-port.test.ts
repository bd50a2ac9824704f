// A hub or a status server on a port of the Fetch standard's "bad ports" (6000, 10080, 5060, 6665–6669, …): Node's
// fetch (undici) and browsers refuse to connect there, Bun's fetch does not. Before: a hub on 6000 served, a Node
// hubWorker printed "cannot join the hub at http://127.0.0.1:6000: fetch failed; retrying" for ever (the cause, "bad
// port", hidden in the error's cause), and a browser could not open its status page. Now createHub, `slotbus hub
// --port`, serveStatus and an MCP listener (stdio bus.listen("http:…"), slotbus stdio --listen) refuse the port,
// saying why, and a worker's retry line carries its error's causes.
import { afterAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createHub } from "../../src/http/index.ts"
import { serveStatus } from "../../src/status/index.ts"
import { parseHttpAddress } from "../../src/stdio/index.ts"
import { outcome, stopAll, until } from "../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const dir = mkdtempSync(join(tmpdir(), "slotbus-bad-port-"))
afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
  rmSync(dir, { recursive: true, force: true })
})

const WHY = "browsers and Node's fetch refuse to connect to it"

/** What `opening` rejects with; null when it opened (closed again at once: before the fix, it served the port). */
async function refusal(opening: Promise<{ close?(): Promise<void>; stop?(): Promise<void> }>): Promise<unknown> {
  try {
    const opened = await opening
    await (opened.close ?? opened.stop)!.call(opened)
    return null
  } catch (e) {
    return e
  }
}

test.each([6000, 10080, 5060, 6667])(
  "createHub and serveStatus on port %d reject with a RangeError naming the port and why",
  async (port) => {
    const hub = await refusal(createHub({ port, quiet: true }))
    expect(hub).toBeInstanceOf(RangeError)
    expect((hub as Error).message).toStartWith(`createHub: port ${port} is one of the Fetch standard's bad ports`)
    expect((hub as Error).message).toContain(WHY)
    const status = await refusal(serveStatus([], { port }))
    expect(status).toBeInstanceOf(RangeError)
    expect((status as Error).message).toStartWith(`serveStatus: port ${port} is one of the Fetch standard's bad ports`)
  },
)

// before: the MCP listener served them, and an MCP client on Node's fetch or in a browser could never connect
test.each(["http:6000", "http:127.0.0.1:10080", "http://localhost:6667"])(
  "an MCP listener's address %s is refused with a TypeError naming the port and why",
  (spec) => {
    let thrown: unknown
    try {
      parseHttpAddress(spec)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(TypeError)
    expect((thrown as Error).message).toStartWith(`"${spec}": its port ${/\d+$/.exec(spec)![0]} is one of the Fetch`)
    expect((thrown as Error).message).toContain(WHY)
    expect(parseHttpAddress("http:6001").port).toBe(6001)
  },
)

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `\`slotbus hub --port 6000\` under ${runtime} exits 2 saying why the port is refused`,
    async () => {
      const hub = await peerChild(runtime, "http/http-hub.ts", ["--port", "6000", "--quiet"])
      try {
        const ended = await outcome(hub.exited, 30_000) // a hang guard: before, it served the port until killed
        expect(ended.state, hub.output).toBe("resolved")
        expect(ended.state === "resolved" && ended.value).toBe(2)
        expect(hub.stderr).toContain("slotbus hub: --port 6000 is one of the Fetch standard's bad ports")
        expect(hub.stderr).toContain(WHY)
        expect(hub.lines.join("\n")).not.toContain("listening")
      } finally {
        await hub.kill()
      }
    },
    60_000,
  )

test.skipIf(peerSkip("node") !== null)(
  "a Node worker that cannot reach its hub says why in its retry line: the fetch error's cause",
  async () => {
    // a hub URL on a bad port (an older hub's, or one behind a proxy): Node's fetch refuses it before connecting
    const tokenFile = join(dir, "token")
    writeFileSync(tokenFile, "0123456789abcdef0123456789abcdef\n", { mode: 0o600 })
    const worker = await peerChild("node", "node-hub-worker.ts", ["http://127.0.0.1:6000", "badport", tokenFile])
    try {
      await until(() => worker.stderr.includes("retrying"), "the worker says it retries", 30_000)
      // before: "cannot join the hub at http://127.0.0.1:6000: fetch failed; retrying"
      expect(worker.stderr).toContain("cannot join the hub at http://127.0.0.1:6000: fetch failed (bad port)")
    } finally {
      await worker.kill()
    }
  },
  60_000,
)
