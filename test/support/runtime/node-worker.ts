// A worker for Node 26 (node:ffi), built to JavaScript by test/support/runtime/node.ts (Node strips types but not the
// parameter properties src/ uses). Usage: node node-worker.js <bus-name> [--fetch] [--no-sigterm]
// Raw: echoes a request's body; "?pid " answers the process id; "?hold" never answers (a request in flight to kill
// the process under); "?until <file>" answers "released <pid>" once the file exists (a request held until then). --fetch: a fetch handler: /json answers {method, body, header: x-a} as JSON, /stream five
// chunks 5 ms apart, /echo the body back with x-sha256 of what arrived, /hold never answers, /endless 64 KiB chunks
// for as long as they are read (printing "cancelled /endless" when its body is cancelled), /wait nothing until its
// request is cancelled (printing "aborted /wait"), /seen the request's method, URL and headers as JSON, /page a
// ~50 KB page with two set-cookie and a connection header, /big?tag=<t>&kb=<n> n KB of "<t>;", /empty a 204,
// /lies?n=<n> "héllo wörld" (13 bytes) saying content-length n, /typed a Blob of type text/css, /own-error throws
// an error of the app's own class named PayloadTooLargeError (/own-error-stream: its stream fails with one after a
// chunk), anything else "hi <path>" with status 201 and x-runtime: node. It closes its worker on SIGTERM; with
// --no-sigterm it has no SIGTERM listener of its own, as an app that leaves it to slotbus.
// Prints "ready <node version>" once connected, "closed <reason>" at the end. SLOTBUS_TEST_IDLE: its idle strategy.
// SLOTBUS_TEST_CODE_FILE: a file read at start, as a worker's code on disk is; "throw N" in it: the worker throws
// from a timer N ms after it connected ("throw N start": after its start); "exit": it exits with code 1 at its start,
// before it connects; anything else, or no file: it does not.
import { createHash } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { type IdleStrategy, SlotWorker, type SlotRequest } from "../../../src/index.ts"

const [name, mode] = process.argv.slice(2)
if (!name) throw new Error("usage: node-worker.js <bus-name> [--fetch]")
const code = process.env.SLOTBUS_TEST_CODE_FILE
const codeText = code ? readFileSync(code, "utf8") : ""
if (codeText.startsWith("exit")) process.exit(1)
const bug = /^throw (\d+)( start)?/.exec(codeText)
const throwIn = () =>
  setTimeout(() => {
    throw new Error(`a bug ${bug![1]} ms after the ${bug![2] ? "start" : "connect"}`)
  }, Number(bug![1]))
if (bug?.[2]) throwIn()

/** An app's own error class that happens to share a name with one of slotbus's. */
class PayloadTooLargeError extends Error {
  constructor(message: string) {
    super(message)
    this.name = "PayloadTooLargeError"
  }
}

function raw(req: SlotRequest) {
  const text = req.body.length === 5 || req.body[0] === 0x3f ? req.text() : "" // "?": a command
  if (text === "?hold") return new Promise<never>(() => {})
  if (text.startsWith("?until ")) return heldUntil(text.slice(7))
  return text === "?pid " ? String(process.pid) : req.body
}

async function heldUntil(file: string) {
  while (!existsSync(file)) await new Promise((r) => setTimeout(r, 10))
  return `released ${process.pid}`
}

async function fetchHandler(req: Request): Promise<Response> {
  const path = new URL(req.url).pathname
  if (path === "/json")
    return Response.json({ method: req.method, body: await req.text(), header: req.headers.get("x-a") })
  if (path === "/stream") {
    const enc = new TextEncoder()
    return new Response(
      new ReadableStream({
        async start(c) {
          for (let i = 0; i < 5; i++) {
            c.enqueue(enc.encode(`chunk${i};`))
            await new Promise((r) => setTimeout(r, 5))
          }
          c.close()
        },
      }),
    )
  }
  if (path === "/echo") {
    const body = new Uint8Array(await req.arrayBuffer())
    const sha = createHash("sha256").update(body).digest("hex")
    return new Response(body, { headers: { "x-sha256": sha, "x-pid": String(process.pid) } })
  }
  if (path === "/hold") return new Promise<never>(() => {})
  if (path === "/wait")
    return new Promise<Response>((r) =>
      req.signal.addEventListener("abort", () => (console.log("aborted /wait"), r(new Response("late")))),
    )
  if (path === "/endless")
    return new Response(
      new ReadableStream<Uint8Array>(
        {
          pull: (c) => c.enqueue(new Uint8Array(64 * 1024).fill(7)),
          cancel: () => console.log("cancelled /endless"),
        },
        { highWaterMark: 0 },
      ),
    )
  if (path === "/seen") return Response.json({ method: req.method, url: req.url, headers: [...req.headers] })
  if (path === "/page") {
    const headers = new Headers({ "content-type": "text/html; charset=utf-8", connection: "close", "x-b": "c" })
    for (const c of ["a=1", "b=2"]) headers.append("set-cookie", c)
    return new Response(`<p>${"▲ page ".repeat(6000)}</p>`, { headers })
  }
  if (path === "/big") {
    const q = new URL(req.url).searchParams
    const tag = q.get("tag") ?? ""
    return new Response(`${tag};`.repeat(Math.ceil((Number(q.get("kb")) * 1000) / (tag.length + 1))))
  }
  if (path === "/own-error") throw new PayloadTooLargeError("the upload is over the app's quota")
  if (path === "/own-error-stream")
    return new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode("first;"))
          c.error(new PayloadTooLargeError("the export is over the app's quota"))
        },
      }),
    )
  if (path === "/empty") return new Response(null, { status: 204, headers: { "x-empty": "yes" } })
  if (path === "/typed") return new Response(new Blob(["body{}"], { type: "text/css" }))
  if (path === "/lies") {
    const n = new URL(req.url).searchParams.get("n") ?? "11" // characters counted, not bytes: a common mistake
    return new Response(req.method === "HEAD" ? null : "héllo wörld", { headers: { "content-length": n } })
  }
  return new Response(`hi ${path}`, { status: 201, headers: { "x-runtime": "node" } })
}

const idle = process.env.SLOTBUS_TEST_IDLE as IdleStrategy | undefined
const worker =
  mode === "--fetch"
    ? await SlotWorker.connect(name, fetchHandler, { fetch: true, idle })
    : await SlotWorker.connect(name, raw, { idle })
if (!process.argv.includes("--no-sigterm")) process.on("SIGTERM", () => void worker.close())
if (bug && !bug[2]) throwIn()
console.log(`ready ${process.versions.node}`)
const closed = await worker.closed
console.log(`closed ${closed.reason}`)
process.exit(0)
