// Reference: a Worker thread in this same process, postMessage both ways (structured clone copies).
// Loaded as a Worker, this file is the echo thread.
import { threadCpuSeconds } from "../../lib/cpu.ts"
import { EMPTY, FifoReplies, type Transport } from "../transport.ts"

export async function open(): Promise<Transport> {
  const replies = new FifoReplies()
  const worker = new Worker(import.meta.path)
  const { promise: ready, resolve, reject } = Promise.withResolvers<void>()
  let started = false
  worker.onmessage = (e: MessageEvent) => {
    if (!started) return ((started = true), resolve())
    replies.reply(e.data as Uint8Array)
  }
  worker.onerror = (e) => {
    const err = new Error(`worker thread failed: ${e.message}`)
    reject(err)
    replies.failAll(err)
  }
  await ready
  const roundTrip = (body: Uint8Array) => {
    const reply = replies.wait()
    worker.postMessage(body)
    return reply
  }
  let closed = false
  return {
    roundTrip,
    workerCpu: async () => Number(new TextDecoder().decode(await roundTrip(EMPTY))),
    sameProcess: true,
    close: async () => {
      if (!closed) worker.terminate()
      closed = true
    },
  }
}

declare const self: Worker

if (!Bun.isMainThread) {
  // The thread's own CPU time, so the hub's share can be told apart from it.
  const report = () => new TextEncoder().encode(String(threadCpuSeconds()))
  self.onmessage = (e: MessageEvent) => {
    const body = e.data as Uint8Array
    postMessage(body.length === 0 ? report() : body)
  }
  postMessage("ready")
}
