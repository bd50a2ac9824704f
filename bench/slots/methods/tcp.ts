// TCP over loopback (Bun.listen / Bun.connect, TCP_NODELAY), length-prefixed frames. Run directly: the worker.
import { openStream, serveStream } from "../stream.ts"
import type { Transport } from "../transport.ts"

export function open(): Promise<Transport> {
  return openStream(
    { hostname: "127.0.0.1", port: 0 },
    (bound) => {
      if ("unix" in bound) throw new Error("unreachable")
      return [process.execPath, import.meta.path, bound.hostname, String(bound.port)]
    },
    "tcp worker",
  )
}

if (import.meta.main) await serveStream({ hostname: process.argv[2]!, port: Number(process.argv[3]) })
