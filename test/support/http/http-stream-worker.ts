// A hub worker process for test/http/stream.test.ts: routes whose responses stream. Usage:
//   bun test/support/http/http-stream-worker.ts <hub-url> <name>
// Prints "ready <pid>" once registered and connected; "aborted <id> <reason>" when a /watch/:id request's
// req.signal aborts and "cancelled <id> <reason>" when its body stream is cancelled. The SDK logs to stderr.
//
// GET /steps/:id        text: "one\n" at once, "two\n" only after POST /steps/:id/go, then the end
// POST /steps/:id/go    lets /steps/:id go on; answers { produced }: the chunks it had produced until then
// GET /sse/:id          text/event-stream: event "tick" 1 at once, each next one (up to 3) after POST /sse/:id/go, then the end
// POST /sse/:id/go      as /steps/:id/go
// GET /big?bytes=N&seed=S&as=stream|bytes|response
//                       test/support/helpers.ts's pattern(N, S): a ReadableStream of 64 KiB chunks, { body: Uint8Array },
//                       or a Response of the bytes
// GET /watch/:id        64 KiB chunks for as long as it is read
// GET /bad-cookie/:id?as=whole|stream&value=V
//                       an answer whose x-slotbus-set-cookie header is V (default "not json"): "whole\n", or
//                       (as=stream) /watch/:id's endless body
// GET /seen/:id         what /watch/:id or /bad-cookie/:id?as=stream saw: { chunks, aborted, cancelled }
// GET /broken/:id       "partial\n", then, after POST /broken/:id/go, its stream errors ("the disk is on fire")
// GET /stats            app.stats()
import { hubWorker } from "../../../src/http/index.ts"

const [hubUrl, name] = process.argv.slice(2)
if (!hubUrl || !name) throw new Error("usage: http-stream-worker.ts <hub-url> <name>")

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255
  return out
}

const encoder = new TextEncoder()
const CHUNK = 64 * 1024

// A stream's next chunk waits for a POST …/go; each POST lets one more through, whether or not the stream waits yet.
interface Gate {
  produced: number
  released: number
  wake: (() => void) | null
}
const gates = new Map<string, Gate>()
const gate = (id: string): Gate => {
  let g = gates.get(id)
  if (!g) gates.set(id, (g = { produced: 0, released: 0, wake: null }))
  return g
}
async function released(g: Gate, n: number) {
  while (g.released < n) await new Promise<void>((r) => (g.wake = r))
}
/** Lets the gate's stream produce one chunk more; says how many it had produced until then. */
const open = (id: string) => {
  const g = gate(id)
  const produced = g.produced
  g.released++
  g.wake?.()
  g.wake = null
  return Response.json({ produced })
}

const watched = new Map<string, { chunks: number; aborted: string; cancelled: string }>()
const reasonOf = (r: unknown) => (r instanceof Error || r instanceof DOMException ? r.name : String(r))

/** An endless body of 64 KiB chunks, produced one per read; what it saw is kept under `id` for GET /seen/:id. */
function watch(id: string, signal: AbortSignal): ReadableStream<Uint8Array> {
  const w = { chunks: 0, aborted: "", cancelled: "" }
  watched.set(id, w)
  signal.addEventListener("abort", () => {
    w.aborted = reasonOf(signal.reason)
    console.log(`aborted ${id} ${w.aborted}`)
  })
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        w.chunks++
        c.enqueue(pattern(CHUNK, w.chunks))
      },
      cancel(reason) {
        w.cancelled = reasonOf(reason)
        console.log(`cancelled ${id} ${w.cancelled}`)
      },
    },
    { highWaterMark: 0 },
  )
}

const app = hubWorker(hubUrl, name, { maxBackoffMs: 500 })
app
  .get("/steps/:id", (req) => {
    const g = gate(req.params.id)
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          if (g.produced === 0) {
            g.produced++
            return c.enqueue(encoder.encode("one\n"))
          }
          if (g.produced === 1) {
            await released(g, 1)
            g.produced++
            return c.enqueue(encoder.encode("two\n"))
          }
          c.close()
        },
      },
      { highWaterMark: 0 },
    )
    return new Response(body, { headers: { "content-type": "text/plain", "x-steps": req.params.id } })
  })
  .post("/steps/:id/go", (req) => open(req.params.id))
  .get("/sse/:id", (req) => {
    const g = gate(`sse/${req.params.id}`)
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          if (g.produced >= 3) return c.close()
          await released(g, g.produced) // the first at once, each next after one more POST
          g.produced++
          c.enqueue(encoder.encode(`event: tick\nid: ${g.produced}\ndata: {"n":${g.produced}}\n\n`))
        },
      },
      { highWaterMark: 0 },
    )
    return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } })
  })
  .post("/sse/:id/go", (req) => open(`sse/${req.params.id}`))
  .get("/big", (req) => {
    const bytes = Number(req.query.get("bytes") ?? 0)
    const data = pattern(bytes, Number(req.query.get("seed") ?? 0))
    const as = req.query.get("as") ?? "stream"
    if (as === "bytes") return { status: 200, headers: { "content-type": "application/octet-stream" }, body: data }
    if (as === "response") return new Response(data)
    let at = 0
    return new Response(
      new ReadableStream<Uint8Array>(
        {
          pull(c) {
            if (at >= data.length) return c.close()
            c.enqueue(data.subarray(at, at + CHUNK))
            at += CHUNK
          },
        },
        { highWaterMark: 0 },
      ),
    )
  })
  .get("/watch/:id", (req) => new Response(watch(req.params.id, req.signal)))
  .get("/bad-cookie/:id", (req) => {
    const value = req.query.get("value") ?? "not json"
    const headers = { "x-slotbus-set-cookie": value }
    if (req.query.get("as") === "stream") return new Response(watch(req.params.id, req.signal), { headers })
    return new Response("whole\n", { headers })
  })
  .get("/seen/:id", (req) => Response.json(watched.get(req.params.id) ?? null))
  .get("/broken/:id", (req) => {
    const g = gate(`broken/${req.params.id}`)
    return new Response(
      new ReadableStream<Uint8Array>(
        {
          async pull(c) {
            if (g.produced === 0) {
              g.produced++
              return c.enqueue(encoder.encode("partial\n"))
            }
            await released(g, 1)
            throw new Error("the disk is on fire")
          },
        },
        { highWaterMark: 0 },
      ),
    )
  })
  .post("/broken/:id/go", (req) => open(`broken/${req.params.id}`))
  .get("/stats", () => Response.json(app.stats()))

try {
  await app.run()
} catch (e) {
  const err = e as Error
  console.log(`error ${err.constructor.name} ${err.message}`)
  process.exit(2)
}
process.on("SIGTERM", () => void app.close())
console.log(`ready ${process.pid}`)
const closed = await app.closed
console.log(`closed ${closed.reason}`)
process.exit(0)
