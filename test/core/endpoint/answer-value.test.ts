// The value a caller gets from an answer is decided in one place (endpoint/answer-value.ts), whichever way the
// answer came: whole from a slot, or collected by the books from a streamed answer (a remote one goes there too).
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { BorrowedResponse, SlotBus, type SlotResponse, SlotWorker, StreamedResponse } from "../../../src/index.ts"
import { busName } from "../../support/helpers.ts"

// a chunk that comes a turn later: the worker streams it (a stream that is all there is read first, answered whole)
const later = (text: string) =>
  new ReadableStream({
    async pull(c) {
      await Bun.sleep(1)
      c.enqueue(new TextEncoder().encode(text))
      c.close()
    },
  })

const textOf = async (v: unknown) =>
  v instanceof Uint8Array
    ? new TextDecoder().decode(v)
    : v instanceof StreamedResponse
      ? await v.text()
      : (v as SlotResponse | BorrowedResponse).text()

describe("the caller's value is the same whether the worker answered whole or as a stream", () => {
  let bus: SlotBus
  let worker: SlotWorker
  beforeAll(async () => {
    bus = await SlotBus.listen(busName("answer-value"), { slots: 4 })
    worker = await SlotWorker.connect(bus.name, (r) => {
      const text = r.kind === "raw" ? new TextDecoder().decode(r.body) : r.path
      return text.includes("streamed") ? later(text) : text
    })
    await bus.waitForWorkers(1)
  })
  afterAll(async () => {
    await worker.close()
    await bus.close({ drain: false })
  })

  const into = new Uint8Array(64)
  test.each([
    ["bus.call", "no option", "Uint8Array", {}],
    ["bus.call", "borrow", "BorrowedResponse", { borrow: true }], // the books gave a streamed one's bytes themselves
    ["bus.call", "into", "Uint8Array", { into }],
    ["bus.call", "stream", "StreamedResponse", { stream: true }],
    ["bus.request", "no option", "SlotResponse", {}],
    ["bus.request", "borrow", "BorrowedResponse", { borrow: true }],
    ["bus.request", "into", "SlotResponse", { into }],
    ["bus.request", "stream", "StreamedResponse", { stream: true }],
  ] as const)("%s with %s gets a %s", async (entry, _, kind, opts) => {
    for (const how of ["whole", "streamed"]) {
      const v =
        entry === "bus.call"
          ? await bus.call(`${how} raw`, opts)
          : await bus.request({ method: "GET", path: `/${how}` }, opts)
      expect({ how, kind: (v as object).constructor.name }).toEqual({ how, kind })
      expect(await textOf(v)).toBe(entry === "bus.call" ? `${how} raw` : `/${how}`)
      if ("into" in opts) {
        const body = v instanceof Uint8Array ? v : (v as SlotResponse).body
        expect(body.buffer).toBe(into.buffer)
      }
      if (v instanceof BorrowedResponse) v.release()
    }
  })
})

test("a streamed body's chunks may be bytes, strings and Blobs alike", async () => {
  await using bus = await SlotBus.listen(busName("chunks"))
  const chunks = () => [new TextEncoder().encode("bytes "), "text ", new Blob(["blob ", new Uint8Array([0x21])])]
  const worker = await SlotWorker.connect(bus.name, () => {
    const left = chunks()
    return new ReadableStream({
      async pull(c) {
        await Bun.sleep(1) // a stream: not one read whole before its answer
        const next = left.shift()
        if (next === undefined) c.close()
        else c.enqueue(next)
      },
    })
  })
  try {
    await bus.waitForWorkers(1)
    // before: a Blob chunk failed the answer, its error saying a Blob was fine
    expect(await (await bus.request({ path: "/" }, { stream: true })).text()).toBe("bytes text blob !")
    expect((await bus.request({ path: "/" })).text()).toBe("bytes text blob !")
  } finally {
    await worker.close()
  }
})
