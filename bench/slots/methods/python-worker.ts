// slotbus hub in this process ↔ examples/python-worker/echo.py (python/slotbus.py, ctypes over libslotbus).
import { existsSync } from "node:fs"
import { join } from "node:path"
import type { IdleStrategy } from "../../../src/index.ts"
import { packageRoot } from "../cc.ts"
import { spawn } from "../../lib/child.ts"
import { processCpuSeconds } from "../../lib/cpu.ts"
import { SkipMethod, type Transport } from "../transport.ts"
import { openBus } from "./slotbus.ts"

const SCRIPT = join(packageRoot, "examples", "python-worker", "echo.py")

// The Python worker has one idle mode: its serving thread parks on its eventfd doorbell whenever its ring is
// empty, and each handler runs on a thread of its pool. `idle` is the hub's.
export async function open(idle: IdleStrategy): Promise<Transport> {
  if (!Bun.which("python3")) throw new SkipMethod("no python3 on PATH (apt-get install -y python3)")
  if (!existsSync(SCRIPT)) throw new SkipMethod("examples/python-worker/echo.py is not in this package")
  return openBus(
    idle,
    "Python worker",
    (name) => spawn(["python3", SCRIPT, name]),
    async (_bus, child) => processCpuSeconds(child.pid),
  )
}
