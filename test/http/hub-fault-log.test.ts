// A request the hub fails on (an error its code did not expect) is answered 500 and logged, on a Bun front and a
// Node front. Before, the catch-all answered "the hub failed to handle this request" and said nothing anywhere: a
// hub with `nats` and no @nats-io/transport-node refused every worker 500 for ever with an empty log. Logged once per
// kind of error, also with --quiet (quiet leaves out registrations, restarts and evictions, not the hub's faults).
import { afterAll, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { stopAll } from "../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const dir = mkdtempSync(join(tmpdir(), "slotbus-hub-fault-"))
afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
  rmSync(dir, { recursive: true, force: true })
})

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `a ${runtime} hub answers 500 to a request it fails on and logs the error once, also with --quiet`,
    async () => {
      const tokenFile = join(dir, `${runtime}.token`)
      const sockets = mkdtempSync(join(dir, `${runtime}-sockets-`))
      const env = { ...process.env, SLOTBUS_SOCKET_DIR: sockets }
      const hub = await peerChild(runtime, "http/http-hub.ts", ["--port", "0", "--token-file", tokenFile, "--quiet"], {
        env,
      })
      try {
        const base = (await hub.waitLine(/listening on (http:\S+)/, 30_000))[1]!
        const token = readFileSync(tokenFile, "utf8").trim()
        // a fault of the host's, not of the request: the socket directory became a file, so the bus a registration
        // makes cannot listen (an error the hub does not expect)
        rmSync(sockets, { recursive: true })
        writeFileSync(sockets, "")
        const register = async () => {
          const res = await fetch(`${base}/_slotbus/register`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}` },
            body: JSON.stringify({ name: "faulty", instance: "1", pid: 1, routes: [] }),
          })
          return { status: res.status, body: (await res.json()) as { error: string } }
        }
        for (let i = 0; i < 3; i++) {
          const { status, body } = await register()
          expect(status).toBe(500)
          expect(body.error).toBe("internal")
        }
        const health = await fetch(`${base}/health`)
        expect(health.status).toBe(200) // it goes on serving
        await health.arrayBuffer()
        await hub.stop(10_000) // SIGTERM: all it wrote is read once it exited
        const lines = hub.stderr.split("\n").filter((l) => l.includes("answered 500"))
        expect(lines, hub.output).toHaveLength(1) // once for the three
        expect(lines[0]).toStartWith("slotbus hub: answered 500 to a request it failed on: ")
        expect(lines[0]).toContain(sockets)
        expect(lines[0]).toContain("the same error again is not logged")
      } finally {
        await hub.kill()
      }
    },
    60_000,
  )
