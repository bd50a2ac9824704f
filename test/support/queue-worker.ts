// A worker with one slot whose first request ends the way a test asks, for test/core/queue.test.ts. Usage:
//   bun test/support/queue-worker.ts <bus-name> [nats-url]    (with a URL it serves over NATS, docs/PROTOCOL.md §10)
// Prints "ready <pid>" once connected. Routes:
//   /gate/<end>  waits until SIGUSR2 came (before or after it), then ends as <end> says: ok (answers "gate"), throw (an error answer),
//                stream (a streamed answer of two chunks, then END)
//   /hold        answers only when the hub gives it up (cancel, timeout)
//   /id          records the request's x-id header as served, answers it
//   /served      the x-ids served so far, comma-separated
import { SlotWorker, type SlotRequest } from "../../src/index.ts"
import { nats } from "../../src/nats/index.ts"

const [name, url] = process.argv.slice(2)
if (!name) throw new Error("usage: queue-worker.ts <bus-name> [nats-url]")
const served: string[] = []
const gate = Promise.withResolvers<void>() // opened once, for good: the signal may come before the request
process.on("SIGUSR2", () => gate.resolve())

async function handle(req: SlotRequest) {
  const [, route, end] = req.path.split("/")
  switch (route) {
    case "gate": {
      await gate.promise
      if (end === "throw") throw new RangeError("the first request failed on purpose")
      if (end === "stream")
        return new ReadableStream<string>({
          start(c) {
            c.enqueue("one ")
            c.enqueue("two")
            c.close()
          },
        })
      return "gate"
    }
    case "hold":
      return new Promise<string>((_, reject) => req.signal.addEventListener("abort", () => reject(req.signal.reason)))
    case "id": {
      const id = req.headers.get("x-id") ?? ""
      served.push(id)
      return id
    }
    case "served":
      return served.join(",")
    default:
      return { status: 404, body: `no route ${req.path}` }
  }
}

await SlotWorker.connect(name, handle, url ? { remote: nats(url), slots: 1, heartbeatMs: 100 } : {})
console.log(`ready ${process.pid}`)
