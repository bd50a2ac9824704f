// A worker in Bun: the same fetch handler as node-worker.mjs.
//   bun bun-worker.ts <bus name>         (node-front.mjs starts two and keeps them alive)
import { SlotWorker } from "slotbus"

const worker = await SlotWorker.connect(
  process.argv[2]!,
  async (req: Request) =>
    Response.json({
      runtime: `bun ${Bun.version}`,
      pid: process.pid,
      path: new URL(req.url).pathname,
      body: req.method === "POST" ? await req.text() : null,
    }),
  { fetch: true },
)
process.once("SIGTERM", () => worker.close())
await worker.closed
