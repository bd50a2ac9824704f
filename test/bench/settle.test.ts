// A freshly started pair is warmed up until its runtimes' compilers are done with it (bench/slots/settle.ts): what
// it reads (the compiler threads of a process tree, by name) and when it stops, against real compiling processes.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { spawn, stopAll } from "../../bench/lib/child.ts"
import { compilerNs, processTree } from "../../bench/lib/cpu.ts"
import { benchNode } from "../../bench/lib/node.ts"
import { pairProcesses, SETTLE_MAX_MS, SETTLE_WINDOW_MS, SETTLE_WINDOWS, settle } from "../../bench/slots/settle.ts"

/** A process of `runtime` that keeps its compiler busy for `ms`. */
const churn = (runtime: string, ms: number) =>
  spawn([runtime, join(import.meta.dir, "../support/bench/churn.js")], {
    env: { ...process.env, CHURN_MS: String(ms) },
  })

/** Traffic that is a sleep: the only compiling is what the test starts. */
let windows = 0
const sleep = async (ms: number) => void (windows++, await Bun.sleep(ms))

afterEach(() => stopAll())

describe("what it reads", () => {
  test("compilerNs counts the compiler threads of a Bun that keeps compiling, and none of a process without", async () => {
    const busy = churn(process.execPath, 5000)
    const sleeper = spawn(["sleep", "5"])
    await Bun.sleep(200)
    const [c0, s0] = [compilerNs([busy.pid]), compilerNs([sleeper.pid])]
    await Bun.sleep(300)
    // a tenth of a CPU is what settle calls quiet; the churn's compiler ran far more (about one CPU, measured)
    expect(compilerNs([busy.pid]) - c0).toBeGreaterThan(0.1 * 300e6)
    expect(compilerNs([sleeper.pid]) - s0).toBe(0)
    expect(compilerNs([2 ** 22 + 1])).toBe(0) // no such process
  })

  test("compilerNs counts V8's threads in a Node that keeps compiling", async () => {
    const found = benchNode()
    if ("skip" in found) return console.warn(`skipped: ${found.skip}`)
    const busy = churn(found.node, 5000)
    await Bun.sleep(200)
    const c0 = compilerNs([busy.pid])
    await Bun.sleep(300)
    expect(compilerNs([busy.pid]) - c0).toBeGreaterThan(0.1 * 300e6)
  })

  test("processTree holds this process, its children and theirs", async () => {
    const sh = spawn(["sh", "-c", "sleep 5 & echo $!; wait"])
    const grandchild = Number(await sh.line(0))
    try {
      const tree = processTree(process.pid)
      expect(tree[0]).toBe(process.pid)
      expect(tree).toContain(sh.pid)
      expect(tree).toContain(grandchild)
      expect(processTree(sh.pid)).toEqual([sh.pid, grandchild])
    } finally {
      process.kill(grandchild, "SIGKILL") // kill -9 of sh would leave it to init
    }
  })
})

describe("when it stops", () => {
  test("quiet compilers: after SETTLE_WINDOWS quiet windows, and not before --warm's least", async () => {
    windows = 0
    const s = await settle(sleep, 300, pairProcesses(new Set()))
    expect(s.settled).toBe(true)
    expect(s.ms).toBeGreaterThanOrEqual(300)
    expect(windows).toBeGreaterThanOrEqual(Math.max(SETTLE_WINDOWS, Math.floor(300 / SETTLE_WINDOW_MS)))
  })

  test("a process of the pair that keeps compiling: measured after SETTLE_MAX_MS, said not settled", async () => {
    churn(process.execPath, SETTLE_MAX_MS + 3000)
    await Bun.sleep(300) // compiling by now, as a pair is once its traffic runs
    const s = await settle(sleep, 0, pairProcesses(new Set()))
    expect(s.settled).toBe(false)
    expect(s.ms).toBeGreaterThanOrEqual(SETTLE_MAX_MS)
  }, 20_000)

  test("the load burners' compiling is not the pair's: settled", async () => {
    const burner = churn(process.execPath, SETTLE_MAX_MS + 3000)
    await Bun.sleep(300)
    const s = await settle(sleep, 0, pairProcesses(new Set([burner.pid])))
    expect(s.settled).toBe(true)
    expect(s.ms).toBeLessThan(SETTLE_MAX_MS)
  }, 20_000)
})
