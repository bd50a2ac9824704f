// A worker returning each body a Web Response takes beyond BodyInit (test/core/worker/reply-bodies.test.ts), under
// Bun or Node (test/support/runtime/peers.ts). Usage: reply-bodies-worker.ts <bus-name>. /usp, /form, /gen: a
// URLSearchParams, a FormData, an async generator alone; /usp-reply, /form-reply, /gen-reply: each as the body of
// { status, headers, body } (/usp-typed: with a content-type of its own); /sync-iter: a sync iterator as the body,
// which no Response takes. Prints "ready" once connected.
import { SlotWorker, type SlotReply, type SlotRequest } from "../../../src/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: reply-bodies-worker.ts <bus-name>")

async function* chunks() {
  yield new TextEncoder().encode("one;")
  await new Promise((r) => setTimeout(r, 5))
  yield "two;" // a Response takes strings from an async iterable too
  yield new Uint8Array(3000).fill(0x41)
}

const form = () => {
  const f = new FormData()
  f.set("a", "1")
  f.set("file", new Blob(["x,y"], { type: "text/csv" }), "t.csv")
  return f
}

const replies: Record<string, () => SlotReply> = {
  "/usp": () => new URLSearchParams("a=1&b=é"),
  "/usp-reply": () => ({ status: 201, headers: { "x-k": "v" }, body: new URLSearchParams("a=1") }),
  "/usp-typed": () => ({ headers: { "content-type": "text/x-mine" }, body: new URLSearchParams("a=1") }),
  "/form": form,
  "/form-reply": () => ({ status: 202, body: form() }),
  "/gen": chunks,
  "/gen-reply": () => ({ status: 203, headers: { "content-type": "text/plain" }, body: chunks() }),
  "/sync-iter": () => ({ status: 200, body: [new Uint8Array(3)][Symbol.iterator]() }) as never,
}

await SlotWorker.connect(name, (req: SlotRequest) => replies[req.path]!())
console.log("ready")
