// A worker of `slotbus bench soak --production`: a `{ fetch: true }` handler with a crash bug. Every POST /order is
// written to the witness file before it is answered (the run counts executions from it, not from the answers);
// GET /item/<k> answers item(k), 100 B to 48 KiB. One request in SOAK_CRASH_EVERY kills the process first.
//   bun bench/soak/prod-worker.ts <name> <witness file>
import { appendFileSync } from "node:fs"
import { SlotWorker } from "../../src/index.ts"
import { item, orderValue } from "./prod-shape.ts"

const [name, witness] = process.argv.slice(2)
if (!name || !witness) throw new Error("usage: prod-worker.ts <name> <witness file>")
const crashEvery = Number(process.env.SOAK_CRASH_EVERY ?? 0)

const worker = await SlotWorker.connect(
  name,
  async (req: Request) => {
    if (crashEvery > 0 && Math.random() * crashEvery < 1) process.exit(70) // the bug: an uncaught error, say
    const path = new URL(req.url).pathname
    if (req.method === "POST" && path === "/order") {
      const { id, n } = (await req.json()) as { id: string; n: number }
      appendFileSync(witness, `${id}\n`)
      return Response.json({ id, value: orderValue(n) })
    }
    const k = /^\/item\/(\d+)$/.exec(path)?.[1]
    if (req.method === "GET" && k !== undefined) return new Response(item(Number(k)))
    return new Response("no such route", { status: 404 })
  },
  { fetch: true, waitForHubMs: 10_000 },
)
process.on("SIGTERM", () => void worker.close())
await worker.closed
process.exit(0)
