// What a process lets go of when a stop signal ends it (src/kit/basics/at-exit.ts), with a real process and signal.
import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { type Child, FIXTURES, outcome, spawn } from "../../support/helpers.ts"

const children: Child[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})

test("two copies of the module in one process (bun --hot) still drain, let go and die of SIGTERM", async () => {
  const c = spawn([process.execPath, join(FIXTURES, "kit/at-exit-copies.ts")])
  children.push(c)
  await c.waitLine(/^ready$/, 20_000)
  c.signal("SIGTERM")
  // a hang guard, not a timing assert: before, each copy's listener took the other's for the app's and the signal was lost
  expect((await outcome(c.exited, 5000)).state).not.toBe("hung")
  expect(c.proc.signalCode).toBe("SIGTERM")
  expect(c.lines.filter((l) => l !== "ready").sort()).toEqual([
    "drained one",
    "drained two",
    "let go one",
    "let go two",
  ])
}, 30_000)
