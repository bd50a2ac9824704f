// A Supervisor's (supervisor.ts) process of its command for one instance: its environment (SLOTBUS_INSTANCE), its
// output read or inherited (worker-logs.ts), its own process group, the reaper told.
import { FFI_WARNING_ENV, spawn, type SpawnOptions } from "../../runtime/index.ts"
import type { Proc, SupervisorSettings } from "./options.ts"
import type { WorkerLogs } from "./worker-logs.ts"

/** A process of the command for instance `index` (SLOTBUS_INSTANCE), its output attached to `logs`. */
export function launch(o: SupervisorSettings, logs: WorkerLogs, index: number): Proc {
  const { command, stdin, cwd, env } = o
  const merged: Record<string, string> = {}
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) merged[k] = v
  Object.assign(merged, logs.childEnv, { SLOTBUS_INSTANCE: String(index) })
  merged[FFI_WARNING_ENV] ??= "off" // the front printed node:ffi's warning: its Node workers, at each start, do not
  const { stdout, stderr } = logs.stdio
  const lastWords = logs.lastWordsFd // the front's stderr as the child's fd 3 (kit/supervision/last-words.ts)
  const stdio: SpawnOptions =
    lastWords === null ? { stdin, stdout, stderr } : { stdio: [stdin, stdout, stderr, lastWords] }
  // its own process group: a terminal's Ctrl-C (SIGINT to the foreground group) is the front's, to drain them first
  const proc = spawn(command, { ...stdio, cwd, env: merged, detached: true })
  o.reaper?.add(proc.pid)
  logs.attach(proc, index)
  return proc
}
