// A Supervisor whose command's file is taken away (a deploy) for a moment while it restarts a killed instance,
// grows, and reloads, under Bun (as it is) and Node 26 (built by test/support/runtime/peers.ts). Usage:
// supervise-gone.ts <dir>: the command is <dir>/worker.sh (made here, a `sleep`). Prints one line per step:
// "killed back", "resized back", "reload <error class> <message>", then "done"; an unhandled rejection ends it.
import { chmodSync, renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Supervisor } from "../../../src/index.ts"

const file = join(process.argv[2]!, "worker.sh")
writeFileSync(file, "#!/bin/sh\nexec sleep 600\n")
chmodSync(file, 0o755)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until(cond: () => boolean, what: string) {
  for (const end = Date.now() + 15_000; !cond(); await sleep(10))
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
}
/** Runs `step` with the command's file away, and puts it back 100 ms later. */
async function away<T>(step: () => T): Promise<T> {
  renameSync(file, `${file}.away`)
  try {
    return step()
  } finally {
    setTimeout(() => renameSync(`${file}.away`, file), 100)
  }
}
const sup = new Supervisor({ command: [file], restart: { backoffInitialMs: 200 }, killGraceMs: 0 })
sup.start()
const first = sup.instances[0]!.pid
await away(() => sup.kill(0))
await until(() => sup.instances[0]!.state === "running" && sup.instances[0]!.pid !== first, "instance 0 back")
console.log("killed back")
await away(() => sup.resize(2))
await until(() => sup.runningCount === 2, "instance 1 up")
console.log("resized back")
await sleep(200)
const reload = await away(() =>
  sup.reload().then(
    () => null,
    (e: Error) => e,
  ),
)
console.log(`reload ${reload?.constructor.name} ${reload?.message}`)
await sup.stop()
console.log("done")
