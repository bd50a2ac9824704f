// A worker process whose answers stream (docs/PROTOCOL.md §9), for test/core/endpoint/stream.test.ts. Usage:
//   bun test/support/core/stream-worker.ts <bus-name>
// Prints "ready" once connected. Routes (http requests; the path):
//   /steps/<n>          n chunks "step <i>\n"; chunk i+1 is made only after a request to /go
//   /go                 lets the pending /steps stream make its next chunk
//   /big/<bytes>/<chunk> pattern(bytes) (test/support/helpers.ts) in chunks of <chunk> bytes
//   /endless/<chunk>    chunks of <chunk> bytes for ever, counting the bytes its body handed out
//   /count              the bytes /endless has handed out so far
//   /fail/<n>           n chunks, then the body fails with Error("boom after <n>")
//   /whole              a Response of a string (streams as one chunk)
//   /aborted            the paths whose req.signal aborted so far, one per line
import { SlotWorker, type SlotRequest } from "../../../src/index.ts"
import { pattern } from "../helpers.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: stream-worker.ts <bus-name>")

const encoder = new TextEncoder()
let go: (() => void) | null = null
let handedOut = 0
const aborted: string[] = []

function stream(req: SlotRequest, next: (i: number) => Promise<Uint8Array | null> | Uint8Array | null): Response {
  req.signal.addEventListener("abort", () => aborted.push(req.path), { once: true })
  let i = 0
  return new Response(
    new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          const chunk = await next(i++)
          if (chunk === null) c.close()
          else c.enqueue(chunk)
        },
      },
      { highWaterMark: 0 },
    ),
    { headers: { "x-stream": req.path } },
  )
}

function handle(req: SlotRequest) {
  const [, route = "", a = "0", b = "0"] = req.path.split("/")
  switch (route) {
    case "steps":
      return stream(req, async (i) => {
        if (i >= Number(a)) return null
        if (i > 0) await new Promise<void>((resolve) => (go = resolve))
        return encoder.encode(`step ${i}\n`)
      })
    case "go": {
      const g = go
      go = null
      g?.()
      return g ? "went" : "nobody waiting"
    }
    case "big": {
      const all = pattern(Number(a))
      const size = Number(b)
      return stream(req, (i) => (i * size < all.length ? all.subarray(i * size, (i + 1) * size) : null))
    }
    case "endless": {
      const chunk = new Uint8Array(Number(a)).fill(7)
      return stream(req, () => {
        handedOut += chunk.length
        return chunk
      })
    }
    case "count":
      return String(handedOut)
    case "fail":
      return stream(req, (i) => {
        if (i >= Number(a)) throw new Error(`boom after ${a}`)
        return encoder.encode(`part ${i}\n`)
      })
    case "whole":
      return new Response("whole answer", { headers: { "x-stream": "whole" } })
    case "aborted":
      return aborted.join("\n")
    default:
      return { status: 404, body: `no route ${req.path}` }
  }
}

await SlotWorker.connect(name, handle)
console.log("ready")
