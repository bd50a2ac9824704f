// A worker for the API tests (test/core/hub/api.test.ts). Usage: bun test/support/core/api-worker.ts <bus-name> [--fetch]
// Prints "ready" once connected; "aborted <path> <reason name>" when a request's signal aborts.
// Paths: /number (returns 42), /object ({ ok: true }), /response (a Response with two set-cookie),
// /blob (a Blob), /reply-blob ({ status: 202, body: Blob }), /type-error (throws TypeError),
// /wait (awaits req.signal, prints "waiting <path>" first), /status/<n> (that status), anything else echoes the body.
import { SlotWorker, type SlotReply } from "../../../src/index.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: api-worker.ts <bus-name> [--fetch]")

function waitForAbort(signal: AbortSignal, path: string): Promise<SlotReply> {
  console.log(`waiting ${path}`)
  return new Promise((resolve) => {
    signal.addEventListener("abort", () => {
      console.log(`aborted ${path} ${(signal.reason as Error)?.name}`)
      resolve("too late")
    })
  })
}

function answer(path: string, signal: AbortSignal, body: Uint8Array): SlotReply | Promise<SlotReply> {
  switch (path) {
    case "/number":
      return 42 as never
    case "/object":
      return { ok: true } as never
    case "/response": {
      const headers = new Headers({ "content-type": "text/plain", "x-worker": "api" })
      headers.append("set-cookie", "a=1; Path=/")
      headers.append("set-cookie", "b=2; Path=/")
      return new Response("from a Response", { status: 201, headers })
    }
    case "/blob":
      return new Blob(["blob ", "body"], { type: "text/plain" })
    case "/reply-blob":
      return { status: 202, body: new Blob(["in a reply"]) }
    case "/type-error":
      throw new TypeError("a type went wrong")
    default:
      if (path.startsWith("/wait")) return waitForAbort(signal, path)
      if (path.startsWith("/status/")) return { status: Number(path.slice(8)), body: "with that status" }
      return body.slice()
  }
}

const worker = flags.includes("--fetch")
  ? await SlotWorker.connect(
      name,
      async (req: Request) => {
        const url = new URL(req.url)
        if (url.pathname === "/describe")
          return Response.json({
            url: req.url,
            method: req.method,
            headers: Object.fromEntries(req.headers),
            body: await req.text(),
          })
        return answer(url.pathname, req.signal, new Uint8Array(await req.arrayBuffer()))
      },
      { fetch: true },
    )
  : await SlotWorker.connect(name, (req) =>
      answer(req.kind === "raw" ? "/" + req.text() : req.path, req.signal, req.body),
    )
console.log("ready")
const closed = await worker.closed
console.log(`closed ${closed.reason}`)
process.exit(0)
