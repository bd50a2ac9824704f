// slotbus on either backend, the Linux one or the portable one (docs/PROTOCOL.md §13: POSIX shm, socketpair
// doorbells, what macOS runs), measured on this Linux host. A process picks its backend once, when it loads
// libslotbus, so the hub runs in a child Bun process started with SLOTBUS_PLATFORM set, a line hub
// (../line-hub.ts) that measures itself exactly as the "slotbus" rows are measured here (measureTransport, a worker
// child of its own). Both backends are measured this way, so the two rows differ only in the backend. Run directly,
// this is that hub: bun portable.ts <idle>
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { IdleStrategy } from "../../../src/index.ts"
import type { Driver } from "../measure.ts"
import { serveHub } from "../line-hub.ts"
import { childHub } from "./child-hub.ts"
import { open } from "./slotbus.ts"

/** A hub on `backend` in a child process, with its worker, both using `idle`. */
export async function openBackend(backend: "linux" | "posix", idle: IdleStrategy): Promise<Driver> {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-bench-posix-"))
  const removeDir = () => rmSync(dir, { recursive: true, force: true })
  try {
    const env = { ...process.env, SLOTBUS_PLATFORM: backend, SLOTBUS_SOCKET_DIR: dir }
    const hub = await childHub([process.execPath, import.meta.path, String(idle)], env, `the ${backend}-backend hub`)
    return { ...hub, close: () => hub.close().finally(removeDir) }
  } catch (e) {
    removeDir()
    throw e
  }
}

if (import.meta.main) await serveHub(await open(process.argv[2] as IdleStrategy))
