// A worker in Node: the heavy route's handler, a plain fetch handler, run in its own process so a slow report or a
// crash never holds up the front. The front starts two and keeps them alive; it never needs starting by hand.
//   node worker.mjs <bus name>
import { createHash } from "node:crypto"
import { SlotWorker } from "slotbus"

const worker = await SlotWorker.connect(
  process.argv[2],
  async (req) => {
    const id = new URL(req.url).pathname.split("/").at(-1)
    const body = await req.text()
    // the work the front should not do itself: here, a digest hashed over and over
    let digest = body
    for (let i = 0; i < 1000; i++) digest = createHash("sha256").update(digest).digest("hex")
    return Response.json({ id, bytes: Buffer.byteLength(body), digest, pid: process.pid })
  },
  { fetch: true },
)
process.once("SIGTERM", () => worker.close()) // a reload or the front's close: finish what is in flight, then go
await worker.closed
