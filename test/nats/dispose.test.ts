// What disposing of a topic bridged across hosts lets go (src/nats/shared.ts, topic-bridge.ts): `await using` a
// topic settles once its NATS connection is closed, and a drain the server cuts off by dying, or never answers, ends
// in a close, so nothing is left to reconnect for ever. Each member is a real process under Bun and under Node
// (test/support/nats/dispose-peer.ts) that ends only when nothing of its own is left running. Needs `nats-server`
// (apt-get install -y nats-server).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { DRAIN_MS } from "../../src/nats/shared.ts"
import { busName, type Child } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"
import { type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS disposal tests are skipped: ${skip}`)

let cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
})
afterAll(removeNodeBuilds)

async function server(): Promise<{ url: string; server: Child }> {
  const s = await startNats()
  cleanup.push(() => s.server.kill())
  return s
}

async function member(runtime: PeerRuntime, url: string): Promise<Child> {
  const c = await peerChild(runtime, "nats/dispose-peer.ts", [busName("dispose"), url], { stdin: "pipe" })
  cleanup.push(() => c.kill())
  await c.waitLine(/^ready$/, 30_000)
  return c
}

/** Asks `c` to dispose of its topic: its connections to the server left established after, and how it exited. */
async function dispose(c: Child, meanwhile?: () => Promise<void>): Promise<{ established: number; code: number }> {
  c.write("dispose\n")
  await c.waitLine(/^disposing$/)
  await meanwhile?.()
  // the process ends by itself once its topic let go of all it had: a reconnecting connection would keep it running
  const [, n] = await c.waitLine(/^disposed (\d+)$/, DRAIN_MS + 15_000)
  return { established: Number(n), code: await c.exited }
}

for (const runtime of ["bun", "node"] as const)
  describe.skipIf(skip !== null || peerSkip(runtime) !== null)(`disposing of a bridged topic, under ${runtime}`, () => {
    test("await using settles once the connection is closed, and the process then ends", async () => {
      const s = await server()
      const c = await member(runtime, s.url)
      expect(await dispose(c)).toEqual({ established: 0, code: 0 })
    }, 40_000)

    test("a drain the server's death cuts off ends in a close: no reconnecting for ever", async () => {
      const s = await server()
      const c = await member(runtime, s.url)
      s.server.signal("SIGSTOP") // the drain's unsubscribes and ping get no answer…
      const outcome = await dispose(c, async () => {
        await Bun.sleep(300) // …while it waits for them
        await s.server.kill() // then the server dies: the client would reconnect, and its drain wait, without end
      })
      expect(outcome).toEqual({ established: 0, code: 0 })
    }, 40_000)

    test(`a drain the server never answers is cut after ${DRAIN_MS} ms`, async () => {
      const s = await server()
      const c = await member(runtime, s.url)
      s.server.signal("SIGSTOP")
      expect(await dispose(c)).toEqual({ established: 0, code: 0 })
      s.server.signal("SIGCONT")
    }, 40_000)
  })
