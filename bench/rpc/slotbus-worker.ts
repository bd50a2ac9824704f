// The functions of the RPC bench as a slotbus worker: `bun bench/rpc/slotbus-worker.ts <bus-name>`.
// Prints "ready" once connected.
import { SlotWorker } from "../../src/index.ts"

export const api = {
  add(a: number, b: number): number {
    return a + b
  },
  echo<T>(value: T): T {
    return value
  },
}
export type Api = typeof api

if (import.meta.main) {
  const worker = await SlotWorker.expose(process.argv[2]!, api)
  console.log("ready")
  process.once("SIGTERM", () => worker.close())
  await worker.closed
  process.exit(0)
}
