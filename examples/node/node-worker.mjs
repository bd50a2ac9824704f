// A worker in Node (plain JavaScript, Node ≥ 26.9): a fetch handler, as a Node code base already has them.
//   node node-worker.mjs <bus name>      (bun-front.ts starts two and keeps them alive)
import { SlotWorker } from "slotbus"

const worker = await SlotWorker.connect(
  process.argv[2],
  async (req) =>
    Response.json({
      runtime: `node ${process.version}`,
      pid: process.pid,
      path: new URL(req.url).pathname,
      body: req.method === "POST" ? await req.text() : null,
    }),
  { fetch: true },
)
process.once("SIGTERM", () => worker.close())
await worker.closed
