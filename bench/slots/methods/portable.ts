// slotbus on either backend, the Linux one or the portable one (docs/PROTOCOL.md §13: POSIX shm, socketpair
// doorbells, what macOS runs), measured on this Linux host. A process picks its backend once, when it loads
// libslotbus, so the hub runs in a child Bun process started with SLOTBUS_PLATFORM set; it measures itself exactly
// as the "slotbus" rows are measured here (measureTransport, a worker child of its own) and sends back its samples.
// Both backends are measured this way, so the two rows differ only in the backend. Run directly, this is that hub.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { IdleStrategy } from "../../../src/index.ts"
import { run } from "../../lib/child.ts"
import { Samples } from "../../lib/samples.ts"
import { checkEcho, measureTransport, payload, type Sample } from "../measure.ts"
import { open } from "./slotbus.ts"

/** Round trips of `size` bytes, `inflight` at once, for `ms` after `warmMs`, hub and worker on `backend`. */
export async function measure(
  backend: "linux" | "posix",
  idle: IdleStrategy,
  size: number,
  inflight: number,
  ms: number,
  warmMs: number,
): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-bench-posix-"))
  try {
    const env = { ...process.env, SLOTBUS_PLATFORM: backend, SLOTBUS_SOCKET_DIR: dir }
    const args = [String(idle), String(size), String(inflight), String(ms), String(warmMs)]
    const r = await run([process.execPath, import.meta.path, ...args], { env })
    if (r.code !== 0) throw new Error(`the ${backend}-backend hub failed (exit ${r.code}): ${r.stderr.trim()}`)
    const out = JSON.parse(r.stdout) as Omit<Sample, "times"> & { times: number[] }
    return { ...out, times: Samples.of(out.times) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  const [idle, size, inflight, ms, warmMs] = process.argv.slice(2)
  const t = await open(idle as IdleStrategy)
  try {
    const body = payload(Number(size))
    await checkEcho(t, body)
    const s = await measureTransport(t, body, Number(inflight), Number(ms), Number(warmMs))
    process.stdout.write(JSON.stringify({ ...s, times: Array.from(s.times.values()) }))
  } finally {
    await t.close()
  }
  process.exit(0)
}
