// The answers of `slotbus bench stream`, from a process of their own: `bun bench/stream/worker.ts <bus-name>` answers
// as a slotbus worker, `bun bench/stream/worker.ts --http` as a Bun.serve server on 127.0.0.1. Prints "ready"
// ("ready <port>" for --http) once it takes requests. The same paths and bytes either way:
//   /ticks?n=5&gap=20   a stream of n 16-byte chunks: the first at once, then one every gap ms
//   /stream?chunk=65536 a stream of BODY_BYTES in chunks of that size, one per pull of the stream
//   /whole              BODY_BYTES in one piece (a slotbus worker returns the Uint8Array: the path before streams)
import { SlotWorker } from "../../src/index.ts"

export const BODY_BYTES = 64 * 1024 * 1024

/** Byte i of every body is i & 255 (chunk sizes are multiples of 256, so each chunk is the start of it). */
export function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = i & 255
  return out
}

let whole: Uint8Array | null = null
const TICK = pattern(16)

function ticks(n: number, gapMs: number): ReadableStream<Uint8Array> {
  let sent = 0
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent > 0) await Bun.sleep(gapMs)
      c.enqueue(TICK)
      if (++sent === n) c.close()
    },
  })
}

/** BODY_BYTES as `chunk`-byte pieces, each a view of one buffer made once: the bench measures the transport, not a producer. */
function chunks(chunk: number): ReadableStream<Uint8Array> {
  const piece = pattern(chunk)
  let left = BODY_BYTES
  return new ReadableStream<Uint8Array>({
    pull(c) {
      const n = Math.min(chunk, left)
      c.enqueue(n === chunk ? piece : piece.subarray(0, n))
      left -= n
      if (left === 0) c.close()
    },
  })
}

/** The answer to `path` (with its query): a Response over a stream, or the whole body's bytes. */
export function answer(path: string): Response | Uint8Array {
  const url = new URL(path, "http://bench")
  const q = (k: string, d: number) => Number(url.searchParams.get(k) ?? d)
  switch (url.pathname) {
    case "/ticks":
      return new Response(ticks(q("n", 5), q("gap", 20)), { headers: { "content-type": "application/octet-stream" } })
    case "/stream":
      return new Response(chunks(q("chunk", 65536)), { headers: { "content-type": "application/octet-stream" } })
    case "/whole":
      return (whole ??= pattern(BODY_BYTES))
    default:
      return new Response("not found", { status: 404 })
  }
}

if (import.meta.main) {
  const arg = process.argv[2]!
  if (arg === "--http") {
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch(req) {
        const url = new URL(req.url)
        const a = answer(url.pathname + url.search)
        return a instanceof Response ? a : new Response(a, { headers: { "content-type": "application/octet-stream" } })
      },
    })
    console.log(`ready ${server.port}`)
    process.once("SIGTERM", () => process.exit(0))
  } else {
    const worker = await SlotWorker.connect(arg, (req) => answer(req.path))
    console.log("ready")
    process.once("SIGTERM", () => worker.close())
    await worker.closed
    process.exit(0)
  }
}
