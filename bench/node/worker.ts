// A worker process of `slotbus bench node`, run under Node 26 by the front's superviseWorkers (front.ts):
// SlotWorker.expose({ report, small }) for bus.remote(), and a handler answering GET /report/<id> with a Response
// for bus.fetch (nodeHandler); with --reply, with a reply object { headers, body }. Ends with its bus.
//   node worker.js <bus> [--reply]
import { renderReport, small } from "./render.ts"

const { SlotWorker } = (await import("../../src/index.ts")) as typeof import("../../src/index.ts")
const HTML = { "content-type": "text/html; charset=utf-8" }

const reply = process.argv[3] === "--reply"

function answer(path: string) {
  const m = /^\/report\/(\d+)$/.exec(path)
  if (!m) return new Response("not found", { status: 404 })
  const html = renderReport(Number(m[1]))
  return reply ? { headers: HTML, body: html } : new Response(html, { headers: HTML })
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
