// A worker's error answer names its error's class (docs/PROTOCOL.md §6), and an app may have a class of its own with
// the name of one of slotbus's: only the `slotbus-error` pair, which only slotbus's own code writes, makes an error
// slotbus's. An app's PayloadTooLargeError thrown in a handler, or failing its stream, reaches the caller as a
// RemoteError with that name (a front answers it 500), while an answer too large for the slot is still slotbus's
// PayloadTooLargeError (413). Against a Bun and a Node worker (test/support/runtime/node-worker.ts).
import { afterAll, expect, test } from "bun:test"
import { createServer } from "node:http"
import { nodeHandler, PayloadTooLargeError, RemoteError, SlotBus } from "../../../src/index.ts"
import { busName, rejection } from "../../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

afterAll(() => removeNodeBuilds())

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `an app's own error named PayloadTooLargeError is a RemoteError with its name, 500 at a front; slotbus's own is still 413 (${runtime} worker)`,
    async () => {
      // arena = align8(maxHeadBytes) + maxBodyBytes, rounded up to a page: 8192
      const bus = await SlotBus.listen(busName("error-names"), { maxBodyBytes: 4096, maxHeadBytes: 4096 })
      const worker = await peerChild(runtime, "runtime/node-worker.ts", [bus.name, "--fetch"])
      const server = createServer(nodeHandler(bus))
      try {
        await bus.waitForWorkers(1, { timeoutMs: 30_000 })
        const thrown = await rejection(bus.fetch(new Request("http://app/own-error")))
        expect(thrown).toBeInstanceOf(RemoteError)
        expect(thrown).toMatchObject({
          name: "RemoteError",
          remoteName: "PayloadTooLargeError",
          message: "PayloadTooLargeError: the upload is over the app's quota",
        })

        const streamed = await bus.fetch(new Request("http://app/own-error-stream"))
        expect(streamed.status).toBe(200)
        const cut = await rejection(streamed.text())
        expect(cut).toBeInstanceOf(RemoteError)
        expect(cut).toMatchObject({ remoteName: "PayloadTooLargeError" })

        // a whole answer (bus.request offers no stream window) over the slot's arena: slotbus's own
        const tooLarge = await rejection(bus.request({ path: "/big?kb=20" }))
        expect(tooLarge).toBeInstanceOf(PayloadTooLargeError)

        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
        const { port } = server.address() as { port: number }
        const res = await fetch(`http://127.0.0.1:${port}/own-error`)
        expect([res.status, await res.json()]).toEqual([
          500,
          expect.objectContaining({ name: "RemoteError", message: expect.stringContaining("PayloadTooLargeError") }),
        ])
      } finally {
        server.close()
        await worker.kill()
        await bus.close({ drain: false })
      }
    },
    60_000,
  )
