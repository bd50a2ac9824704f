// A reload where instances are down, and what a rejected reload leaves behind (docs/api.md, "Reloading"). A pool
// that gave up (its workers died during start) is started again by a reload once the fix is on disk, and stays
// failed when the code is still broken; a reload while an instance waits out its crash backoff checks the new code
// as it checks a surge successor (joined within readyTimeoutMs, up restart.minReadyMs) and rejects when it crashes;
// a rejected reload leaves no wait for its successor's join polling the bus. Under a Bun front and a Node 26 front,
// with workers of its runtime, whose code is read from a file at each start (test/support/runtime/node-worker.ts).
import { afterAll, describe, expect, test } from "bun:test"
import { writeFileSync } from "node:fs"
import { type Child, stopAll, until } from "../../support/helpers.ts"
import { ask, codePoolFront, removeCodePools } from "../../support/runtime/code-pool.ts"
import { peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
  removeCodePools()
})

const RELOADED = /^(reloaded [\d,]+|reload-failed .*)$/
const poolState = async (f: Child) => (await ask(f, "pool", /^pool (\S+) (\d+) /)).slice(1, 3).join(" ")

describe.each(["bun", "node"] as const)("a %s front", (runtime) => {
  const skip = peerSkip(runtime)
  if (skip) console.log(`skipping the reload-while-down tests of a ${runtime} front: ${skip}`)

  test.skipIf(skip !== null)(
    "reloaded to code that exits at its start rejects each reload and leaves no wait for a join behind",
    async () => {
      const { child: f, file } = await codePoolFront(runtime, 1, "")
      try {
        expect((await ask(f, "reload", RELOADED))[1]).toMatch(/^reloaded \d+$/)
        writeFileSync(file, "exit")
        for (let i = 0; i < 3; i++)
          expect((await ask(f, "reload", RELOADED))[1]).toMatch(/^reload-failed reload: instance 0's successor/)
        // a poll ends at its next turn after the reload rejected (within 5 ms); before: 3 for good, each every 5 ms
        let joining = ""
        for (let i = 0; i < 100 && joining !== "0"; i++) {
          if (i > 0) await Bun.sleep(20)
          joining = (await ask(f, "joining", /^joining (\S+)$/))[1]!
        }
        expect(joining).toBe("0")
        expect(await poolState(f)).toBe("running 1") // the old worker serves on
      } finally {
        await f.kill()
      }
    },
    120_000,
  )

  test.skipIf(skip !== null)(
    "whose pool gave up is started again by a reload once the fix is on disk; still broken, it stays failed",
    async () => {
      const { child: f, file } = await codePoolFront(runtime, 2, "exit", { backoffInitialMs: 10, backoffMaxMs: 300 })
      try {
        await until(() => f.lines.some((l) => l.startsWith("exit 1 ")), "a crash", 60_000)
        for (let i = 0; i < 300 && (await poolState(f)) !== "failed 0"; i++) await Bun.sleep(100)
        expect(await poolState(f)).toBe("failed 0")
        // still broken: rejected, and the pool stays failed
        const broken = (await ask(f, "reload", RELOADED))[1]!
        expect(broken).toMatch(/^reload-failed reload: instance 0 was down; its new process \(pid \d+\) exited/)
        expect(await poolState(f)).toBe("failed 0")
        writeFileSync(file, "") // the fix
        const fixed = (await ask(f, "reload", RELOADED))[1]!
        expect(fixed).toMatch(/^reloaded [1-9]\d*,[1-9]\d*$/) // before: "reloaded 0,0", nothing started
        expect(await poolState(f)).toBe("running 2")
        expect((await ask(f, "call 1 hello", /^(answer|failed) 1 (.*)$/)).slice(1)).toEqual(["answer", "hello"])
      } finally {
        await f.kill()
      }
    },
    180_000,
  )

  test.skipIf(skip !== null)(
    "reloaded while its instance waits out a crash backoff checks the new code: still crashing, the reload rejects",
    async () => {
      const { child: f, file } = await codePoolFront(runtime, 1, "throw 300", { backoffInitialMs: 5_000 })
      try {
        await until(() => f.lines.some((l) => /^exit 0 \d+ \S+ \S+ crash$/.test(l)), "a crash", 60_000)
        // down, its restart 5 s away: the reload starts the code on disk, which throws 300 ms after it joined
        const broken = (await ask(f, "reload", RELOADED))[1]!
        // before: "reloaded <pid>", the new code not checked
        expect(broken).toMatch(
          /^reload-failed reload: instance 0 was down; its new process \(pid \d+\) exited .*minReadyMs/,
        )
        writeFileSync(file, "") // the fix: a reload while it is down again resolves once the new code stayed up
        await until(() => f.lines.filter((l) => /^exit 0 \d+ \S+ \S+ crash$/.test(l)).length >= 2, "its crash", 60_000)
        expect((await ask(f, "reload", RELOADED))[1]).toMatch(/^reloaded [1-9]\d*$/)
        expect(await poolState(f)).toBe("running 1")
        expect((await ask(f, "call 1 hello", /^(answer|failed) 1 (.*)$/)).slice(1)).toEqual(["answer", "hello"])
      } finally {
        await f.kill()
      }
    },
    180_000,
  )
})
