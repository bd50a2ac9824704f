// A worker process of `slotbus bench node`, run under Node 26 by the front's superviseWorkers (front.ts):
// SlotWorker.expose({ report, small }) for bus.remote(), and a handler answering GET /report/<id> with a Response
// for bus.fetch (nodeHandler). Ends with its bus.
//   node worker.js <bus>
import { renderReport, small } from "./render.ts"

const { SlotWorker } = (await import("../../src/index.ts")) as typeof import("../../src/index.ts")
const HTML = { "content-type": "text/html; charset=utf-8" }

function answer(path: string): Response {
  const m = /^\/report\/(\d+)$/.exec(path)
  if (!m) return new Response("not found", { status: 404 })
  return new Response(renderReport(Number(m[1])), { headers: HTML })
}

const worker = await SlotWorker.expose(
  process.argv[2]!,
  { report: renderReport, small },
  {
    handler: (req) => answer(req.path),
  },
)
await worker.closed
process.exit(0)
