// A unix domain stream socket (Bun.listen / Bun.connect), length-prefixed frames. Run directly: the worker.
import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { openStream, serveStream } from "../stream.ts"
import type { Transport } from "../transport.ts"

let opened = 0

export async function open(): Promise<Transport> {
  const path = join(tmpdir(), `slotbus-bench-${process.pid}-${opened++}.sock`)
  rmSync(path, { force: true })
  const t = await openStream({ unix: path }, () => [process.execPath, import.meta.path, path], "unix socket worker")
  return { ...t, close: async () => (await t.close(), rmSync(path, { force: true })) }
}

if (import.meta.main) await serveStream({ unix: process.argv[2]! })
