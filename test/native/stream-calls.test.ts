// libslotbus's worker stream calls (csrc/stream.c, docs/PROTOCOL.md §9.7) driven by hand from a child process
// (test/support/native/stream-end-worker.ts), and a TS worker's error END, each against a Bun SlotBus: an END with pairs
// waits for credit without spinning, and an END that can never fit says so instead of waiting for good.
import { describe, expect, test } from "bun:test"
import { RemoteError, SlotBus, SlotWorker } from "../../src/index.ts"
import { bunChild, busName, outcome } from "../support/helpers.ts"

const GUARD_MS = 5_000

describe("an error END with pairs (docs/PROTOCOL.md §9.2, §9.5)", () => {
  test("waits in sb_worker_stream_wait until its pairs fit, and is refused with -E2BIG where it never can", async () => {
    const name = busName("stream-end")
    const bus = await SlotBus.listen(name, { streamWindowBytes: 4096, timeoutMs: 10_000 })
    const worker = bunChild("native/stream-end-worker.ts", [name])
    try {
      const res = await bus.request({ path: "/x" }, { stream: true })
      await worker.waitLine(/^ready$/)
      expect(worker.lines.slice(0, 4)).toEqual([
        "wrote 4040",
        "end -11", // EAGAIN: the 64-byte END does not fit the 40 or 48 bytes of credit left
        "wait 0", // and waiting for credit does wait (it timed out): the DATA credit left is no reason to return
        "big end -7", // E2BIG: 40 bytes before the ring's end, and after a PAD it would pass any credit the hub can give
      ])
      let got = 0
      const read = await outcome(
        (async () => {
          for await (const part of res.body) got += part.length
        })(),
        GUARD_MS,
      )
      expect(read.state === "rejected" && read.error).toBeInstanceOf(RemoteError)
      expect(read.state === "rejected" && (read.error as RemoteError).message).toBe(
        "StreamError: the handler failed midway.",
      )
      expect(got).toBe(4040)
      await worker.waitLine(/^ended 0$/)
    } finally {
      await worker.kill()
      await bus.close({ drain: false })
    }
  }, 15_000)

  test("a TS worker's error with a long message and stack reaches the caller through the smallest window", async () => {
    const name = busName("stream-end-ts")
    const bus = await SlotBus.listen(name, { streamWindowBytes: 4096, timeoutMs: 10_000 })
    // DATA of the size the path names, then the error, whose message and stack make 3 KB of pairs: after 2000
    // bytes they would fit neither before the ring's end nor after a PAD; after 3500 only after a PAD
    const worker = await SlotWorker.connect(name, (req) => {
      const size = Number(req.path.slice(1))
      let sent = false
      return new Response(
        new ReadableStream({
          pull(c) {
            if (!sent) {
              sent = true
              c.enqueue(new Uint8Array(size).fill(1))
              return
            }
            const e = new TypeError("m".repeat(1000))
            e.stack = "s".repeat(2000)
            c.error(e)
          },
        }),
      )
    })
    try {
      await bus.waitForWorkers(1)
      for (const size of [2000, 3500, 2000]) {
        const res = await bus.request({ path: `/${size}` }, { stream: true })
        let got = 0
        const read = await outcome(
          (async () => {
            for await (const part of res.body) got += part.length
          })(),
          GUARD_MS,
        )
        expect(read.state === "rejected" && read.error).toBeInstanceOf(RemoteError)
        expect(read.state === "rejected" && (read.error as RemoteError).remoteName).toBe("TypeError")
        expect(got).toBe(size)
      }
    } finally {
      await worker.close()
      await bus.close({ drain: false })
    }
  }, 15_000)
})
