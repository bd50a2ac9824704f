// bus.fetch refuses a body over maxBodyBytes while reading it: by its Content-Length before a byte is read, or as
// soon as more than the limit arrived, never after reading a body of any size whole.
import { expect, test } from "bun:test"
import { PayloadTooLargeError, SlotBus, SlotWorker } from "../../../src/index.ts"
import { busName, rejection } from "../../support/helpers.ts"

const LIMIT = 1024 * 1024
const CHUNK = 64 * 1024

async function withBus(run: (bus: SlotBus) => Promise<void>) {
  await using bus = await SlotBus.listen(busName("fetch-limit"), { maxBodyBytes: LIMIT })
  const worker = await SlotWorker.connect(bus.name, (req) => String(req.body.length))
  try {
    await bus.waitForWorkers(1)
    await run(bus)
  } finally {
    await worker.close({ timeoutMs: 1000 })
  }
}

// A body of `total` bytes made only as it is read; `pulled` says how much was asked for.
function lazyBody(total: number) {
  const made = { pulled: 0, cancelled: false }
  const body = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (made.pulled >= total) return c.close()
        made.pulled += CHUNK
        c.enqueue(new Uint8Array(CHUNK).fill(1))
      },
      cancel: () => void (made.cancelled = true),
    },
    { highWaterMark: 0 },
  )
  return { body, made }
}

test("a streamed body without a length is refused once more than maxBodyBytes arrived, and the rest is not read", async () => {
  await withBus(async (bus) => {
    const { body, made } = lazyBody(256 * 1024 * 1024)
    const req = new Request("http://front/upload", { method: "POST", body, duplex: "half" } as RequestInit)
    const err = await rejection(bus.fetch(req))
    expect(err).toBeInstanceOf(PayloadTooLargeError)
    expect((err as Error).message).toContain(`over maxBodyBytes ${LIMIT}`)
    expect(made.pulled).toBeLessThanOrEqual(LIMIT + 2 * CHUNK) // not the 256 MiB on offer
    expect(made.cancelled).toBe(true)
    const ok = await bus.fetch(new Request("http://front/", { method: "POST", body: new Uint8Array(LIMIT) }))
    expect(await ok.text()).toBe(String(LIMIT)) // at the limit: served
  })
})

test("a body whose Content-Length is over maxBodyBytes is refused before it is read, through a real server", async () => {
  await withBus(async (bus) => {
    let seen: unknown
    using server = Bun.serve({
      port: 0,
      fetch: (req) =>
        bus.fetch(req).catch((e) => {
          seen = e
          return new Response("too large", { status: e instanceof PayloadTooLargeError ? 413 : 500 })
        }),
    })
    // A client that says 64 MiB follow (under Bun.serve's own limit) and sends three bytes: the answer cannot wait for the rest.
    const answer = Promise.withResolvers<string>()
    let got = ""
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: server.port!,
      socket: {
        data(_, chunk) {
          got += chunk.toString()
          if (got.includes("\r\n\r\n")) answer.resolve(got)
        },
        close: () => answer.resolve(got),
      },
    })
    try {
      socket.write(`POST /upload HTTP/1.1\r\nHost: front\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\nabc`)
      expect((await answer.promise).split(" ")[1]).toBe("413")
    } finally {
      socket.end()
    }
    expect((seen as Error).message).toContain(`request body is ${64 * 1024 * 1024} bytes, over maxBodyBytes ${LIMIT}`)
    const small = await fetch(server.url, { method: "POST", body: "hello" })
    expect(await small.text()).toBe("5")
  })
})
