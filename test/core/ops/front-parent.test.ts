// parentAlive (src/core/ops/front-parent.ts): a pool's worker asks it whether the front that started it is gone,
// and writes its last line to the pool's log file itself only then (test/kit/supervision/worker-logs.test.ts). A
// front killed with -9 and reaped while it is asked must read as gone, never alive again.
import { afterAll, describe, expect, test } from "bun:test"
import { spawn } from "../../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

afterAll(removeNodeBuilds)

const ROUNDS = 30

describe.each(PEER_RUNTIMES)("parentAlive under %s", (runtime) => {
  test.skipIf(peerSkip(runtime) !== null)(
    "a process killed and reaped while it is asked over and over never reads as alive again once it read as gone",
    async () => {
      let wrong = 0
      for (let i = 0; i < ROUNDS; i++) {
        const victim = spawn(["sleep", "60"])
        const watcher = await peerChild(runtime, "core/watch-parent.ts", [String(victim.pid)])
        await watcher.line(0)
        await victim.kill() // kill -9; this process reaps it while the watcher asks
        await watcher.exited
        wrong += (JSON.parse(await watcher.line(1)) as { wrong: number }).wrong
      }
      expect(wrong).toBe(0)
    },
    60_000,
  )
})
