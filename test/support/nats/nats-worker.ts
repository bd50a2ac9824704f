// A worker serving a hub over NATS (docs/PROTOCOL.md §10), for test/nats. Usage:
//   bun test/support/nats/nats-worker.ts <bus-name> <nats-url or options JSON> [--slots=N] [--heartbeat-ms=N] [--expose]
//                                   [--host=LABEL]
// With --expose it serves RPC calls instead: add(a, b) and where() (its pid).
// Prints "ready <pid>" once it announced itself. Routes (http; raw calls answer their body reversed):
//   /echo           200, x-pid, the body as sent
//   /id             the request's x-id header, also printed as "served <id>"
//   /hold           prints "holding", answers only when the hub gives it up (then records it: /aborted)
//   /big/<n>        n bytes
//   /throw          a TypeError
//   /stream/<n>/<size>  n chunks of size bytes (chunk i is all i & 255), each made only when the body is pulled
//   /made           how many chunks /stream has made so far
//   /gated          a stream: "first", then "second" only once /open was asked
//   /stream-fail/<n> n chunks "chunk i\n", then the stream fails with a RangeError
//   /stream-hold    a stream: "one", then nothing until it is cancelled (then recorded: /aborted)
//   /later/<ms>     the body as sent, read after <ms> ms (async: other requests are answered meanwhile)
//   /reply/<ms>     req.reply(): status 201 and x-len written at once, the body (reversed) filled in after <ms> ms
//   /slow/<ms>      the body as sent, after <ms> ms, printing "running <body>", then "answered <body>" as it
//                   answers (no Bun global: also under Node)
// SIGUSR2 closes it (worker.close(): running handlers finish first), printing "closing" and, once closed, "closed".
import { SlotWorker, type SlotRequest } from "../../../src/index.ts"
import { nats } from "../../../src/nats/index.ts"

const [name, url, ...flags] = process.argv.slice(2)
if (!name || !url) throw new Error("usage: nats-worker.ts <bus-name> <nats-url> [--slots=N] [--heartbeat-ms=N]")
const flag = (f: string) => flags.find((x) => x.startsWith(`--${f}=`))?.split("=")[1]
const aborted: string[] = []
let made = 0
let open = Promise.withResolvers<void>()

function handle(req: SlotRequest) {
  if (req.kind === "raw") return req.body.slice().reverse()
  const [, route = "", arg = "0"] = req.path.split("/")
  switch (route) {
    case "echo":
      return { status: 200, headers: { "x-pid": String(process.pid) }, body: req.body.slice() }
    case "id": {
      const id = req.headers.get("x-id") ?? ""
      console.log(`served ${id}`)
      return id
    }
    case "hold":
      console.log("holding")
      return new Promise<string>((_, reject) =>
        req.signal.addEventListener("abort", () => {
          aborted.push(req.path)
          reject(req.signal.reason)
        }),
      )
    case "aborted":
      return aborted.join("\n")
    case "big":
      return new Uint8Array(Number(arg)).fill(7)
    case "throw":
      throw new TypeError("thrown on the far side")
    case "stream": {
      const [, , n = "0", size = "0"] = req.path.split("/")
      let i = 0
      return new ReadableStream<Uint8Array>(
        {
          pull(c) {
            if (i === Number(n)) return c.close()
            made++
            c.enqueue(new Uint8Array(Number(size)).fill(i++ & 255))
          },
        },
        { highWaterMark: 0 },
      )
    }
    case "made":
      return String(made)
    case "gated": {
      const gate = open.promise
      return new ReadableStream<string>({
        start: (c) => c.enqueue("first"),
        async pull(c) {
          await gate
          c.enqueue("second")
          c.close()
        },
      })
    }
    case "open":
      open.resolve()
      open = Promise.withResolvers<void>()
      return "opened"
    case "stream-fail": {
      let i = 0
      return new ReadableStream<string>({
        pull(c) {
          if (i === Number(arg)) return c.error(new RangeError(`failed after ${arg}`))
          c.enqueue(`chunk ${i++}\n`)
        },
      })
    }
    case "stream-hold":
      return new ReadableStream<string>({
        start: (c) => c.enqueue("one"),
        pull: () => new Promise(() => {}),
        cancel: () => void aborted.push(req.path),
      })
    case "later": {
      const body = req.body
      return Bun.sleep(Number(arg)).then(() => body.slice())
    }
    case "reply": {
      const body = req.body.slice()
      const view = req.reply(body.length, { status: 201, headers: { "x-len": String(body.length) } })
      return Bun.sleep(Number(arg)).then(() => (view.set(body.reverse()), view))
    }
    case "slow": {
      const body = req.body.slice()
      console.log(`running ${new TextDecoder().decode(body)}`)
      return new Promise<Uint8Array>((r) =>
        setTimeout(() => {
          console.log(`answered ${new TextDecoder().decode(body)}`)
          r(body)
        }, Number(arg)),
      )
    }
    default:
      return { status: 404, body: `no route ${req.path}` }
  }
}

const slots = flag("slots")
const hb = flag("heartbeat-ms")
// A URL, or the NATS client's connection options as JSON (a test that needs the server order kept).
const server = url.startsWith("{") ? (JSON.parse(url) as Record<string, unknown>) : url
const opts = {
  remote: nats(server),
  slots: slots ? Number(slots) : undefined,
  heartbeatMs: hb ? Number(hb) : 100,
  host: flag("host"),
}
const worker = flags.includes("--expose")
  ? await SlotWorker.expose(name, { add: (a: number, b: number) => a + b, where: () => process.pid }, opts)
  : await SlotWorker.connect(name, handle, opts)
process.once("SIGUSR2", async () => {
  console.log("closing")
  await worker.close()
  console.log("closed")
})
console.log(`ready ${process.pid}`)
