// The worker of the endpoint conformance suite (test/conformance/endpoint.test.ts), of any kind: on this host over
// shared memory, or through a transport of test/conformance/transports.ts. Usage:
//   bun test/support/conformance/conformance-worker.ts <bus-name> [--slots=N] [--remote=<transport> --address=<address>]
// Prints "ready <pid>" once connected. Raw calls answer their body reversed. Routes (http):
//   /echo           the body as sent, status x-status (200), headers x-reply-headers (JSON pairs) plus x-pid, x-method
//   /throw          a RangeError("thrown on purpose")
//   /hold           prints "holding <x-id>", answers only when the hub gives it up: then prints and records
//                   "aborted <x-id>"
//   /aborted        the x-ids of the /hold requests given up so far, comma-separated
//   /gate/<end>     prints "started <x-id>", waits until SIGUSR2 came (before or after it: opened once, for good),
//                   then ends as <end> says: ok (answers "gate"), throw (an error answer), stream (two chunks, END)
//   /id             records the request's x-id as served, answers it
//   /served         the x-ids served so far, comma-separated
//   /stream/<n>/<size>  n chunks of size bytes (chunk i all i & 255), each made only when the body is pulled
//   /made           how many chunks /stream has made so far
import { SlotWorker, type SlotReply, type SlotRequest } from "../../../src/index.ts"
import { remoteNamed } from "../../conformance/remotes.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: conformance-worker.ts <bus-name> [--slots=N] [--remote=<t> --address=<a>]")
const flag = (f: string) => flags.find((x) => x.startsWith(`--${f}=`))?.slice(f.length + 3)

const served: string[] = []
const aborted: string[] = []
let made = 0
const gate = Promise.withResolvers<void>()
process.on("SIGUSR2", () => gate.resolve())

async function handle(req: SlotRequest): Promise<SlotReply> {
  if (req.kind === "raw") return req.body.slice().reverse()
  const [, route = "", a = "0", b = "0"] = req.path.split("/")
  const id = req.headers.get("x-id") ?? ""
  switch (route) {
    case "echo": {
      const extra = JSON.parse(req.headers.get("x-reply-headers") ?? "[]") as [string, string][]
      return {
        status: Number(req.headers.get("x-status") ?? 200),
        headers: [
          ...extra,
          ["x-pid", String(process.pid)] as [string, string],
          ["x-method", req.method] as [string, string],
        ],
        body: req.body.slice(),
      }
    }
    case "throw":
      throw new RangeError("thrown on purpose")
    case "hold":
      console.log(`holding ${id}`)
      return new Promise<string>((_, reject) =>
        req.signal.addEventListener("abort", () => {
          aborted.push(id)
          console.log(`aborted ${id}`)
          reject(req.signal.reason)
        }),
      )
    case "aborted":
      return aborted.join(",")
    case "gate": {
      console.log(`started ${id}`)
      await gate.promise
      if (a === "throw") throw new RangeError("the gated request failed on purpose")
      if (a === "stream")
        return new ReadableStream<string>({
          start(c) {
            c.enqueue("one ")
            c.enqueue("two")
            c.close()
          },
        })
      return "gate"
    }
    case "id":
      served.push(id)
      return id
    case "served":
      return served.join(",")
    case "stream": {
      let i = 0
      return new ReadableStream<Uint8Array>(
        {
          pull(c) {
            if (i === Number(a)) return c.close()
            made++
            c.enqueue(new Uint8Array(Number(b)).fill(i++ & 255))
          },
        },
        { highWaterMark: 0 },
      )
    }
    case "made":
      return String(made)
    default:
      return { status: 404, body: `no route ${req.path}` }
  }
}

const transport = flag("remote")
const slots = Number(flag("slots") ?? 32)
await SlotWorker.connect(
  name,
  handle,
  transport === undefined ? {} : { remote: remoteNamed(transport, flag("address")!), slots, heartbeatMs: 100 },
)
console.log(`ready ${process.pid}`)
