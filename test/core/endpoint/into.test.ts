// `into`: answers copied into a buffer the caller reuses (RequestOptions.into). What every kind of worker does with
// it (fits, too long, given up) is in test/conformance/endpoint.test.ts; here the options are checked, and many
// requests in flight at once each get their own answer in their own buffer.
import { afterEach, describe, expect, test } from "bun:test"
import { SlotBus } from "../../../src/index.ts"
import { busName, pattern, rejection, spawnWorker, stopAll } from "../../support/helpers.ts"

afterEach(stopAll)

describe("into", () => {
  test("is refused with borrow, with stream, when it is not a Uint8Array, and by bus.fetch; nothing is sent", async () => {
    const bus = await SlotBus.listen(busName("into-opts"))
    try {
      const into = new Uint8Array(8)
      const refused = [
        bus.call("a", { into, borrow: true }),
        bus.request({ path: "/" }, { into, stream: true }),
        bus.call("a", { into: new ArrayBuffer(8) as never }),
        bus.call("a", { into: [1, 2] as never }),
        bus.fetch(new Request("http://x/"), { into } as never),
      ]
      const errors = (await Promise.all(refused.map(rejection))) as Error[]
      expect(errors.every((e) => e instanceof TypeError)).toBe(true)
      expect(errors.map((e) => e.message)).toEqual([
        "into cannot be combined with borrow: pick one",
        "into cannot be combined with stream: pick one",
        "into must be a Uint8Array",
        "into must be a Uint8Array",
        expect.stringContaining('"into"'),
      ])
      expect(bus.stats()).toMatchObject({ requests: 5, errors: 5, inFlight: 0, queued: 0 }) // made, and refused
    } finally {
      await bus.close({ drain: false })
    }
  })

  test("64 calls at once, each into its own buffer: every answer is its own request's, in its own buffer", async () => {
    const bus = await SlotBus.listen(busName("into-many"), { slots: 16 })
    const w = await spawnWorker(bus.name)
    try {
      await bus.waitForWorkers(1)
      for (const size of [64, 4096, 65536]) {
        const buffers = Array.from({ length: 64 }, () => new Uint8Array(size))
        const answers = await Promise.all(buffers.map((into, i) => bus.call(pattern(size, i), { into })))
        answers.forEach((a, i) => {
          expect(a.buffer).toBe(buffers[i]!.buffer)
          expect(a).toEqual(pattern(size, i))
        })
      }
      // a buffer detached while its request is out: the answer comes as a copy, nothing is written to it
      const gone = new Uint8Array(8)
      const out = bus.call(pattern(8, 9), { into: gone })
      gone.buffer.transfer()
      expect(await out).toEqual(pattern(8, 9))
    } finally {
      await w.kill()
      await bus.close({ drain: false })
    }
  })
})
