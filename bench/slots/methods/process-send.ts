// Bun.spawn's IPC channel: process.send in a child Bun process, structured-clone ("advanced") serialization.
// Run directly, this file is that worker.
import { spawn } from "../../lib/child.ts"
import { cpuReport, parseCpuReport } from "../../lib/cpu.ts"
import { EMPTY, FifoReplies, type Transport } from "../transport.ts"

export async function open(): Promise<Transport> {
  const replies = new FifoReplies()
  const { promise: ready, resolve } = Promise.withResolvers<void>()
  let started = false
  const child = spawn([process.execPath, import.meta.path], {
    ipc: (m) => {
      if (!started) return ((started = true), resolve())
      replies.reply(m as Uint8Array)
    },
  })
  child.exited.then((code) => replies.failAll(new Error(`process.send worker exited with ${code}`)))
  const close = async () => void (await child.kill())
  try {
    await child.whileAlive(ready, "process.send worker")
  } catch (e) {
    await close()
    throw e
  }
  const roundTrip = (body: Uint8Array) => {
    const reply = replies.wait()
    child.send(body)
    return reply
  }
  return { roundTrip, workerCpu: async () => parseCpuReport(await roundTrip(EMPTY)), close }
}

if (import.meta.main) {
  process.on("message", (m) => {
    const body = m as Uint8Array
    process.send!(body.length === 0 ? cpuReport() : body)
  })
  process.send!("ready")
  process.on("disconnect", () => process.exit(0))
}
