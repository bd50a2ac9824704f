// The worker side of the bench's Node methods, run under Node (built to JavaScript by methods/node.ts); every mode
// echoes a request and answers an empty one with its CPU seconds (cpuReport), as the Bun workers do.
// Usage: node worker.js slotbus <bus-name> <idle> | process.send | unix <path>; a worker_threads thread when loaded
// as one (hub.ts's "worker" method).
import { connect } from "node:net"
import { isMainThread, parentPort } from "node:worker_threads"
import { type IdleStrategy, SlotWorker } from "../../../src/index.ts"
import { cpuReport, threadCpuSeconds } from "../../lib/cpu.ts"
import { FrameReader, frameOf } from "../frames.ts"

const echo = (body: Uint8Array, report: () => Uint8Array) => (body.length === 0 ? report() : body)

async function main(mode: string | undefined, args: string[]) {
  if (mode === "slotbus") {
    // The body is a view into shared memory; returning it copies it into the response arena.
    const worker = await SlotWorker.connect(args[0]!, (req) => echo(req.body, cpuReport), {
      idle: args[1] as IdleStrategy,
      waitForHubMs: 5000,
    })
    await worker.closed
    process.exit(0)
  } else if (mode === "process.send") {
    process.on("message", (m) => process.send!(echo(m as Uint8Array, cpuReport)))
    process.on("disconnect", () => process.exit(0))
    process.send!("ready")
  } else if (mode === "unix") {
    const socket = connect(args[0]!)
    const reader = new FrameReader((f) => socket.write(frameOf(echo(f, cpuReport))))
    socket.on("data", (chunk: Buffer) => reader.push(chunk))
    socket.on("close", () => process.exit(0))
  } else throw new Error(`usage: worker.js slotbus <name> <idle> | process.send | unix <path>, not ${mode}`)
}

if (!isMainThread) {
  // The thread's own CPU time, so the hub's share can be told apart from it.
  const report = () => new TextEncoder().encode(String(threadCpuSeconds()))
  parentPort!.on("message", (m: Uint8Array) => parentPort!.postMessage(echo(m, report)))
  parentPort!.postMessage("ready")
} else await main(process.argv[2], process.argv.slice(3))
