// HTTP/1.1 over loopback: Bun.serve in a child process, fetch with keep-alive here. Run directly: the worker.
import { spawn } from "../../lib/child.ts"
import { cpuReport, parseCpuReport } from "../../lib/cpu.ts"
import type { Transport } from "../transport.ts"

export async function open(): Promise<Transport> {
  const child = spawn([process.execPath, import.meta.path])
  const close = async () => void (await child.kill())
  try {
    const [url] = await child.whileAlive(child.waitLine(/^.*$/, Infinity), "http worker")
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
