// A handler may return any body a Web Response takes (docs/api.md, "a worker"): a URLSearchParams, a FormData or an
// async iterable, alone or as { status, headers, body }'s body, reach the caller with their bytes and the
// content-type a Request would give them (unless the reply names its own), whole (bus.request) and streamed
// ({ stream: true }). What no Response takes is a RemoteError naming every kind of body a handler may return. Against
// a Bun and a Node worker (test/support/core/reply-bodies-worker.ts).
import { afterAll, expect, test } from "bun:test"
import { RemoteError, SlotBus } from "../../../src/index.ts"
import { busName, rejection } from "../../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

afterAll(() => removeNodeBuilds())

const GEN = `one;two;${"A".repeat(3000)}`

async function answer(bus: SlotBus, path: string, stream: boolean) {
  const r = stream ? await bus.request({ path }, { stream: true }) : await bus.request({ path })
  const bytes = stream ? await (r as { bytes(): Promise<Uint8Array> }).bytes() : (r as { body: Uint8Array }).body
  return { status: r.status, headers: r.headers, text: new TextDecoder().decode(bytes), bytes }
}

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `URLSearchParams, FormData and async iterable replies arrive with their bytes and content-type (${runtime} worker)`,
    async () => {
      const bus = await SlotBus.listen(busName("reply-bodies"))
      const worker = await peerChild(runtime, "core/reply-bodies-worker.ts", [bus.name])
      try {
        await bus.waitForWorkers(1, { timeoutMs: 30_000 })
        for (const stream of [false, true]) {
          const usp = await answer(bus, "/usp", stream)
          expect([usp.status, usp.text]).toEqual([200, "a=1&b=%C3%A9"])
          expect(usp.headers.get("content-type")).toBe("application/x-www-form-urlencoded;charset=UTF-8")

          const uspReply = await answer(bus, "/usp-reply", stream)
          expect([uspReply.status, uspReply.text, uspReply.headers.get("x-k")]).toEqual([201, "a=1", "v"])
          expect(uspReply.headers.get("content-type")).toBe("application/x-www-form-urlencoded;charset=UTF-8")

          const typed = await answer(bus, "/usp-typed", stream)
          expect([typed.status, typed.text, typed.headers.get("content-type")]).toEqual([200, "a=1", "text/x-mine"])

          for (const [path, status] of [
            ["/form", 200],
            ["/form-reply", 202],
          ] as const) {
            const form = await answer(bus, path, stream)
            expect(form.status).toBe(status)
            const type = form.headers.get("content-type")!
            expect(type).toStartWith("multipart/form-data; boundary=")
            const parsed = await new Response(form.bytes, { headers: { "content-type": type } }).formData()
            expect(parsed.get("a")).toBe("1")
            const file = parsed.get("file") as File
            expect([file.name, file.type, await file.text()]).toEqual(["t.csv", "text/csv", "x,y"])
          }

          const gen = await answer(bus, "/gen", stream)
          expect([gen.status, gen.text, gen.headers.get("content-type")]).toEqual([200, GEN, null])
          const genReply = await answer(bus, "/gen-reply", stream)
          expect([genReply.status, genReply.text, genReply.headers.get("content-type")]).toEqual([
            203,
            GEN,
            "text/plain",
          ])

          const e = await rejection(answer(bus, "/sync-iter", stream))
          expect(e).toBeInstanceOf(RemoteError)
          expect((e as RemoteError).remoteName).toBe("TypeError")
          for (const kind of ["Blob", "ReadableStream", "URLSearchParams", "FormData", "async iterable", "string"])
            expect((e as RemoteError).message).toContain(kind)
        }
      } finally {
        await worker.kill()
        await bus.close({ drain: false })
      }
    },
    60_000,
  )
