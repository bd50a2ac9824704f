// kit/supervision/options.ts: the restart policy's seven settings are one option group, `restart` (issue 65). Each
// flat name they had before 1.0 is refused where it is passed, saying where it went: never ignored, never taken.
import { describe, expect, test } from "bun:test"
import { superviseWorkers, Supervisor } from "../../../src/index.ts"
import { supervisorSettings } from "../../../src/kit/supervision/options.ts"

const OLD: Record<string, [number, string]> = {
  minUptimeMs: [500, "restart: { minUptimeMs }"],
  maxUnstableRestarts: [2, "restart: { maxUnstableRestarts }"],
  maxRestarts: [3, "restart: { maxRestarts }"],
  restartWindowMs: [10_000, "restart: { windowMs }"],
  backoffInitialMs: [50, "restart: { backoffInitialMs }"],
  backoffMaxMs: [1_000, "restart: { backoffMaxMs }"],
  minReadyMs: [0, "restart: { minReadyMs }"],
}
const command = [process.execPath, "-e", "setInterval(() => {}, 1000)"]

/** The error `make` throws, or null; whatever it made instead is stopped (a pool it started must not outlive the test). */
async function refusal(make: () => Supervisor): Promise<Error | null> {
  let sup: Supervisor | null = null
  try {
    sup = make()
    return null
  } catch (e) {
    return e as Error
  } finally {
    await sup?.stop({ drainTimeoutMs: 0, killGraceMs: 100 })
  }
}

describe("a flat restart option from before 1.0", () => {
  test.each(Object.entries(OLD))(
    "new Supervisor({ %s }) is refused, naming its place in restart",
    async (name, [v, now]) => {
      const e = await refusal(() => new Supervisor({ command, [name]: v } as never))
      expect(e).toBeInstanceOf(TypeError)
      expect(e?.message).toBe(`new Supervisor: the option "${name}" is now ${now}`)
    },
  )

  test.each(Object.entries(OLD))(
    "superviseWorkers(null, { %s }) is refused before any process starts",
    async (name, [v, now]) => {
      const e = await refusal(() => superviseWorkers(null, { command, [name]: v } as never))
      expect(e).toBeInstanceOf(TypeError)
      expect(e?.message).toBe(`superviseWorkers: the option "${name}" is now ${now}`)
    },
  )
})

describe("the restart group", () => {
  test("takes the seven settings; what it leaves out gets its default", async () => {
    const restart = {
      minUptimeMs: 500,
      stableAfterMs: 5_000,
      maxUnstableRestarts: 2,
      maxRestarts: 3,
      windowMs: 10_000,
      backoffInitialMs: 50,
      backoffMaxMs: 1_000,
      minReadyMs: 0,
    }
    expect(await refusal(() => new Supervisor({ command, restart }))).toBeNull()
    expect(supervisorSettings({ command, restart }).restart).toEqual(restart)
    expect(supervisorSettings({ command, restart: { maxRestarts: 3 } }).restart).toEqual({
      minUptimeMs: 1_000,
      stableAfterMs: 10_000,
      maxUnstableRestarts: 5,
      maxRestarts: 3,
      windowMs: 60_000,
      backoffInitialMs: 100,
      backoffMaxMs: 5_000,
      minReadyMs: 1_500,
    })
  })

  test("an unknown, misspelt or old name inside it, or a bad value, is a clear error", async () => {
    const make = (restart: object) => () => new Supervisor({ command, restart: restart as never })
    expect((await refusal(make({ restartWindowMs: 1 })))?.message).toBe(
      'Supervisor restart: the option "restartWindowMs" is now restart: { windowMs }',
    )
    expect((await refusal(make({ maxRestart: 1 })))?.message).toContain('did you mean "maxRestarts"?')
    expect((await refusal(make({ minUptimeMs: -1 })))?.message).toContain("restart.minUptimeMs")
    expect((await refusal(make({ maxUnstableRestarts: 0 })))?.message).toContain("restart.maxUnstableRestarts")
    expect(await refusal(() => new Supervisor({ command, restart: 5 as never }))).toBeInstanceOf(TypeError)
  })
})
