// A fetch-mode worker that counts the AbortControllers made in its process (test/core/endpoint/fetch-layers.test.ts).
// Usage: bun test/support/core/fetch-layers-worker.ts <bus-name>. Prints "ready" once connected. Paths: /made (how
// many AbortControllers so far, counted before this request's handler ran), /wait (prints "waiting", answers once
// req.signal aborts, printing "aborted <reason name>"), /echo (method, url, headers and body as JSON).
import { SlotWorker } from "../../../src/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: fetch-layers-worker.ts <bus-name>")

let made = 0
const Real = globalThis.AbortController
globalThis.AbortController = class Counted extends Real {
  constructor() {
    super()
    made++
  }
}

await SlotWorker.connect(
  name,
  async (req: Request) => {
    const path = new URL(req.url).pathname
    if (path === "/made") return Response.json({ made, isRequest: req instanceof Request })
    if (path === "/wait") {
      console.log("waiting")
      const signal = req.signal
      await new Promise((resolve) => signal.addEventListener("abort", resolve))
      console.log(`aborted ${(signal.reason as Error)?.name}`)
      return new Response("too late")
    }
    return Response.json({
      method: req.method,
      url: req.url,
      headers: [...req.headers],
      cookies: req.headers.getSetCookie(),
      body: req.method === "GET" ? null : await req.json(),
    })
  },
  { fetch: true },
)
console.log("ready")
