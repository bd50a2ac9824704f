// A worker that keeps what the docs say not to keep: the last request, its body and its reply view. Usage:
//   bun test/support/core/keeper-worker.ts <bus-name>
// POST /keep: keeps req, req.body and a 16-byte req.reply() view (filled with "R"), answers through it.
// POST /keep-small: keeps only req.body (under 4 KiB, so a copy) and answers "kept".
// GET /inspect: answers JSON of what the kept objects read now. When the hub goes away it reads them once
// more, prints "after-close <json>" and exits 0 (a crash would show as a signal instead).
import { SlotWorker, type SlotRequest } from "../../../src/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: keeper-worker.ts <bus-name>")

let kept: SlotRequest | null = null
let keptBody: Uint8Array = new Uint8Array(0)
let keptReply: Uint8Array = new Uint8Array(0)

// Each read either gives a value or throws; both are allowed, the value's content is what the test judges.
const probe = (f: () => unknown) => {
  try {
    return f()
  } catch (e) {
    return `threw ${(e as Error).name}`
  }
}
const look = () => ({
  method: probe(() => kept?.method),
  path: probe(() => kept?.path),
  headers: probe(() => kept?.headers),
  bodyLength: probe(() => keptBody.length),
  body: probe(() => new TextDecoder().decode(keptBody)),
  subarrayLength: probe(() => keptBody.subarray(0).length),
  bufferLength: probe(() => keptBody.buffer.byteLength),
  replyLength: probe(() => keptReply.length),
  replyBytes: probe(() => Array.from(keptReply).length),
  text: probe(() => kept?.text()),
})

const worker = await SlotWorker.connect(name, (req) => {
  if (req.path === "/keep-small") {
    keptBody = req.body
    return "kept"
  }
  if (req.path === "/keep") {
    kept = req
    keptBody = req.body
    keptReply = req.reply(16, { status: 200 })
    keptReply.fill(82)
    return keptReply
  }
  return JSON.stringify(look())
})
console.log("ready")
await worker.closed
await Bun.sleep(50) // let the channel let go of the region
console.log(`after-close ${JSON.stringify(look())}`)
process.exit(0)
