// HTTP/1.1 over loopback: Bun.serve in a child process, fetch with keep-alive here. Run directly: the worker.
import { cpuReport, parseCpuReport, spawnChild, stopChild, whileAlive } from "../lib/proc.ts"
import type { Transport } from "../lib/transport.ts"

export async function open(): Promise<Transport> {
  const child = spawnChild([process.execPath, import.meta.path])
  const close = () => stopChild(child)
  try {
    const url = await whileAlive(child, "http worker", child.firstLine())
    const roundTrip = async (body: Uint8Array) => {
      const res = await fetch(url, { method: "POST", body, keepalive: true })
      return new Uint8Array(await res.arrayBuffer())
    }
    const workerCpu = async () => parseCpuReport(await (await fetch(url)).text())
    return { roundTrip, workerCpu, close }
  } catch (e) {
    await close()
    throw e
  }
}

if (import.meta.main) {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (req.method === "GET") return new Response(cpuReport())
      return new Response(await req.arrayBuffer())
    },
  })
  console.log(`http://127.0.0.1:${server.port}/`)
}
