// A request that cannot be written into its slot fails alone: the slot goes back, the pump keeps going.
import { describe, expect, test } from "bun:test"
import { PayloadTooLargeError, SlotBus, SlotWorker } from "../../../src/index.ts"
import { headLength, writeHead } from "../../../src/core/wire/codec.ts"
import { busName, rejection, sentToWorkers, until } from "../../support/helpers.ts"

async function inProcess(
  opts: Parameters<typeof SlotBus.listen>[1],
  handler: Parameters<typeof SlotWorker.connect>[1] = (r) => r.body,
) {
  const bus = await SlotBus.listen(busName("dispatch"), opts)
  const worker = await SlotWorker.connect(bus.name, handler, { waitForHubMs: 2000 })
  await bus.waitForWorkers(1)
  return {
    bus,
    worker,
    async [Symbol.asyncDispose]() {
      await worker.close({ timeoutMs: 100 })
      await bus.close({ drain: false })
    },
  }
}

const allFree = (bus: SlotBus) => bus.workers.every((w) => w.slots.every((s) => s === "free"))

describe("head length", () => {
  test.each([
    ["a lone high surrogate", "\uD800"],
    ["a lone low surrogate", "\uDC00"],
    ["a low before a high surrogate", "\uDC00\uD800"],
    ["a pair", "\uD83D\uDE00"],
    ["a pair and a lone one", "\uD83D\uDE00\uD83D"],
    ["three-byte and two-byte characters", "€é"],
    ["NUL-free ASCII", "abc"],
  ])("of %s is exactly what the encoder writes", (_, s) => {
    const out = new Uint8Array(64)
    expect(headLength([s, s])).toBe(writeHead(out, [s, s]))
    expect(headLength([s])).toBe(new TextEncoder().encode(s).length + 1)
  })
})

describe("a request whose slot cannot be filled", () => {
  // Header values are Latin-1 (as in Headers), so lone surrogates can only come in the path.
  test("a head of lone surrogates exactly at maxHeadBytes is sent whole; one byte more is PayloadTooLargeError; no slot leaks", async () => {
    await using h = await inProcess({ slots: 2, maxHeadBytes: 64 }, (r) => String(r.path.length))
    // "GET\0" + "/" + path + "\0" = 6 + 3·n bytes for n lone surrogates (each U+FFFD, 3 bytes)
    const fits = "/" + "\uD800".repeat(19) // 6 + 57 = 63
    const res = await h.bus.request({ path: fits })
    expect(res.text()).toBe("20")
    const over = "/" + "\uD800".repeat(20) // 66 > 64: counted as 2 bytes each it would pass the check and overflow
    expect(await rejection(h.bus.request({ path: over + "aa" }))).toBeInstanceOf(PayloadTooLargeError)
    expect(await rejection(h.bus.request({ path: over }))).toBeInstanceOf(PayloadTooLargeError)
    expect((await h.bus.request({ path: "/ok" })).text()).toBe("3")
    await until(() => allFree(h.bus), "every slot is free")
  })

  test("a head of lone surrogates that fits maxHeadBytes only when miscounted is refused, and the one slot stays usable", async () => {
    // The arena is one page: 1500 lone surrogates counted as 2 bytes (3 006) would pass; written they take 4 506.
    await using h = await inProcess({ slots: 1, maxHeadBytes: 4096, maxBodyBytes: 0, timeoutMs: 2000 }, (r) => r.path)
    expect(await rejection(h.bus.request({ path: "/" + "\uD800".repeat(1500) }))).toBeInstanceOf(PayloadTooLargeError)
    for (let i = 0; i < 3; i++) expect((await h.bus.request({ path: `/after-${i}` })).text()).toBe(`/after-${i}`)
    await until(() => allFree(h.bus), "every slot is free")
  })

  test("a queued request whose body was transferred rejects with TypeError alone; the others are answered and every slot returns", async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    await using h = await inProcess({ slots: 1 }, async (r) => {
      const body = r.body.slice()
      await gate
      return body
    })
    const first = h.bus.call("first")
    const doomed = new Uint8Array(new ArrayBuffer(16)).fill(7)
    const queued = h.bus.call(doomed) // waits for the one slot
    const after = h.bus.call("after")
    structuredClone(doomed.buffer, { transfer: [doomed.buffer] }) // detached while queued
    release()
    expect(new TextDecoder().decode(await first)).toBe("first")
    const e = await rejection(queued)
    expect(e).toBeInstanceOf(TypeError)
    expect(String(e)).toContain("transferred")
    expect(new TextDecoder().decode(await after)).toBe("after")
    await until(() => allFree(h.bus), "every slot is free")
    expect(new TextDecoder().decode(await h.bus.call("still serving"))).toBe("still serving")
  })

  test("a body already detached when request() is called is a TypeError before anything is sent", async () => {
    await using h = await inProcess({ slots: 2 })
    const buf = new ArrayBuffer(8)
    const view = new Uint8Array(buf, 2, 4)
    structuredClone(buf, { transfer: [buf] })
    expect(await rejection(h.bus.call(buf))).toBeInstanceOf(TypeError)
    expect(await rejection(h.bus.call(view))).toBeInstanceOf(TypeError)
    expect(sentToWorkers(h.bus)).toBe(0)
    expect(new TextDecoder().decode(await h.bus.call("fine"))).toBe("fine")
  })

  test("answers keep coming after a failed dispatch inside the pump: nothing stalls the connection", async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    await using h = await inProcess({ slots: 2, timeoutMs: 5000 }, async (r) => {
      const b = r.body.slice()
      if (r.text().startsWith("hold")) await gate
      return b
    })
    const held = [h.bus.call("hold-1"), h.bus.call("hold-2")]
    // Queued behind the two held slots; dispatched from the pump's collect when they come back.
    const bad = new Uint8Array(new ArrayBuffer(32))
    const queued = [h.bus.call(bad), h.bus.call("q-1"), h.bus.call("q-2")]
    structuredClone(bad.buffer, { transfer: [bad.buffer] })
    release()
    expect((await Promise.all(held)).map((b) => new TextDecoder().decode(b))).toEqual(["hold-1", "hold-2"])
    expect(await rejection(queued[0]!)).toBeInstanceOf(TypeError)
    expect(new TextDecoder().decode(await queued[1]!)).toBe("q-1")
    expect(new TextDecoder().decode(await queued[2]!)).toBe("q-2")
    for (let i = 0; i < 20; i++) expect(new TextDecoder().decode(await h.bus.call(`n-${i}`))).toBe(`n-${i}`)
    await until(() => allFree(h.bus), "every slot is free")
    expect(h.bus.stats().internalErrors).toBe(0)
  })
})

describe("the hub's books", () => {
  test("after answers, handler errors, timeouts and aborts, no request is counted as waiting or in flight", async () => {
    await using h = await inProcess({ slots: 4 }, async (r) => {
      if (r.path === "/throw") throw new Error("on purpose")
      if (r.path === "/slow") await Bun.sleep(60)
      return r.body
    })
    const ac = new AbortController()
    const outcomes = await Promise.allSettled([
      h.bus.request({ path: "/ok", body: "a" }),
      h.bus.request({ path: "/throw" }),
      h.bus.request({ path: "/slow" }, { timeoutMs: 10 }),
      h.bus.request({ path: "/slow" }, { signal: ac.signal }),
      h.bus.request({ path: "/throw" }),
    ])
    ac.abort()
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled", "rejected"])
    await until(() => h.bus.workers[0]!.inFlight === 0, "every slot is back")
    expect(h.bus.workers[0]).toMatchObject({ inFlight: 0, waiting: 0, stuck: 0 })
    expect((await h.bus.request({ path: "/ok", body: "after" })).text()).toBe("after")
  })
})

describe("the hub's pump", () => {
  test("goes on after an exception inside its collect: it is counted, and later answers are still collected", async () => {
    await using h = await inProcess({ slots: 2, idle: "spin" })
    // the worker's SlotEndpoint, whose collect the pump calls
    const endpoint = (h.bus as unknown as { dispatcher: { endpoints: { collect: () => number }[] } }).dispatcher
      .endpoints[0]!
    const real = endpoint.collect.bind(endpoint)
    let thrown = 0
    endpoint.collect = () => {
      if (thrown++ === 0) throw new Error("a bug in collect")
      return real()
    }
    for (let i = 0; i < 20; i++) expect(new TextDecoder().decode(await h.bus.call(`after-${i}`))).toBe(`after-${i}`)
    expect(thrown).toBeGreaterThan(1)
    expect(h.bus.stats().internalErrors).toBe(1)
    await until(() => allFree(h.bus), "every slot is free")
  })
})
