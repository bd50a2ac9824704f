// A worker process of `slotbus bench node`, run under Node 26 by the front's superviseWorkers (front.ts):
// SlotWorker.expose({ report, small, page }) for bus.remote(), and a handler answering GET /report/<id>,
// /small/<id> and /page/<id> with a Response for bus.fetch (nodeHandler), with --reply a reply object
// { headers, body }, and a raw call (bus.call) of such a path with the body alone. Ends with its bus.
//   node worker.js <bus> [--reply]
import { bodyOf, HTML_TYPE, JSON_TYPE, page, route, small } from "../lib/answers.ts"
import { renderReport } from "./render.ts"

const { SlotWorker } = (await import("../../src/index.ts")) as typeof import("../../src/index.ts")
const HTML = { "content-type": "text/html; charset=utf-8" }

const reply = process.argv[3] === "--reply"

/** The body of a path and its headers, or null for a path this bench does not serve. */
function bodyAndType(path: string): { body: string; headers: Record<string, string> } | null {
  const m = /^\/report\/(\d+)$/.exec(path)
  if (m) return { body: renderReport(Number(m[1])), headers: HTML }
  const r = route(path)
  return r && { body: bodyOf(path)!, headers: r.answer === "small" ? JSON_TYPE : HTML_TYPE }
}

const worker = await SlotWorker.expose(
  process.argv[2]!,
  { report: renderReport, small, page },
  {
    handler: (req) => {
      if (req.kind === "raw") return bodyAndType(req.text())?.body ?? ""
      const got = bodyAndType(req.path)
      if (!got) return new Response("not found", { status: 404 })
      return reply ? got : new Response(got.body, { headers: got.headers })
    },
  },
)
await worker.closed
process.exit(0)
