// kit/supervision/restart-policy.ts: what a crash leads to, judged from plain figures (no process, no timer). The
// Supervisor's own tests (test/core/hub/supervisor.test.ts, crash-policy.test.ts) run the same rules with real processes.
import { describe, expect, test } from "bun:test"
import { RestartPolicy, type RestartSettings } from "../../../src/kit/supervision/restart-policy.ts"

const DEFAULTS: RestartSettings = {
  minUptimeMs: 1_000,
  stableAfterMs: 10_000,
  maxUnstableRestarts: 5,
  maxRestarts: Infinity,
  windowMs: 60_000,
  backoffInitialMs: 100,
  backoffMaxMs: 5_000,
  minReadyMs: 1_500,
}
const policy = (s: Partial<RestartSettings> = {}, knowsServed = false) =>
  new RestartPolicy({ ...DEFAULTS, ...s }, knowsServed)

/** Crashes of instance `index` at the times given, each a failed start or not (up `uptimeMs`), its counts carried along. */
function crashes(p: RestartPolicy, times: number[], failedStart: boolean, index = 0, uptimeMs?: number) {
  let failedStarts = 0
  let earlyCrashes = 0
  return times.map((now) => {
    const v = p.crashed(now, { index, failedStarts, failedStart, earlyCrashes, uptimeMs }, false)
    failedStarts = v.failedStarts
    earlyCrashes = v.earlyCrashes
    return v
  })
}

describe("a failed start", () => {
  test("is a crash sooner than minUptimeMs after its start, before it served", () => {
    const p = policy({ minUptimeMs: 1_000 })
    expect(p.failedStart(0, false)).toBe(true)
    expect(p.failedStart(999, false)).toBe(true)
    expect(p.failedStart(1_000, false)).toBe(false) // it lived minUptimeMs
    expect(p.failedStart(5, true)).toBe(false) // it joined: a crash after serving is not a failed start
    expect(policy({ minUptimeMs: 0 }).failedStart(0, false)).toBe(false)
  })
})

describe("restart", () => {
  test("every crash after a good run restarts after the first step, however many there were", () => {
    const p = policy()
    const v = crashes(p, [0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000], false)
    expect(v.map((x) => ("restartIn" in x ? x.restartIn : x))).toEqual([100, 100, 100, 100, 100, 100, 100, 100])
    expect(v.every((x) => x.failedStarts === 0)).toBe(true)
  })

  test("only failed starts in a row lengthen the delay, doubling to backoffMaxMs; a good run starts over", () => {
    const p = policy({ maxUnstableRestarts: 20, backoffInitialMs: 100, backoffMaxMs: 1_000 })
    const v = crashes(p, [0, 1, 2, 3, 4, 5], true)
    expect(v.map((x) => ("restartIn" in x ? x.restartIn : x))).toEqual([100, 200, 400, 800, 1_000, 1_000])
    expect(v.map((x) => x.failedStarts)).toEqual([1, 2, 3, 4, 5, 6])
    const after = p.crashed(10, { index: 0, failedStarts: 6, failedStart: false }, false)
    expect(after).toEqual({ restartIn: 100, failedStarts: 0, earlyCrashes: 0, crashes: 7 })
  })
})

describe("an early crash", () => {
  test("within stableAfterMs of its start, after it joined, doubles the delay to backoffMaxMs, and never gives up", () => {
    const p = policy({ stableAfterMs: 10_000, backoffInitialMs: 100, backoffMaxMs: 1_000, maxUnstableRestarts: 1 })
    const v = crashes(p, [0, 1_500, 3_000, 4_500, 6_000, 7_500, 9_000, 10_500], false, 0, 1_200)
    expect(v.map((x) => ("restartIn" in x ? x.restartIn : x))).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000])
    expect(v.map((x) => x.earlyCrashes)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(v.every((x) => x.failedStarts === 0)).toBe(true) // it joined: no failed start
    const stable = p.crashed(
      20_000,
      { index: 0, failedStarts: 0, failedStart: false, earlyCrashes: 8, uptimeMs: 10_000 },
      false,
    )
    expect(stable).toEqual({ restartIn: 100, failedStarts: 0, earlyCrashes: 0, crashes: 9 })
    expect(
      policy({ stableAfterMs: 0 }).crashed(0, { index: 0, failedStarts: 0, failedStart: false, uptimeMs: 0 }, false),
    ).toMatchObject({ restartIn: 100, earlyCrashes: 0 })
  })

  test("3 in a row within windowMs are a crash loop, whichever instances; a stable run's crash or a quiet window ends it", () => {
    const p = policy({ windowMs: 10_000 })
    const early = (now: number, index: number) =>
      p.crashed(now, { index, failedStarts: 0, failedStart: false, uptimeMs: 900 }, false)
    early(0, 0)
    early(100, 1)
    expect(p.crashLoop(100)).toBe(false)
    early(200, 0)
    expect(p.crashLoop(200)).toBe(true)
    expect(p.crashLoop(10_050)).toBe(false) // the first of the 3 left the window
    early(10_080, 1)
    expect(p.crashLoop(10_080)).toBe(true) // 100, 200, 10 080
    p.crashed(10_090, { index: 0, failedStarts: 0, failedStart: false, uptimeMs: 60_000 }, false)
    expect(p.crashLoop(10_090)).toBe(false)
  })
})

describe("give up", () => {
  test("an instance that fails to start more than maxUnstableRestarts times in a row", () => {
    const p = policy({ maxUnstableRestarts: 3 }, true)
    const v = crashes(p, [0, 1, 2, 3], true, 2)
    expect(v.slice(0, 3).every((x) => "restartIn" in x)).toBe(true)
    expect(v[3]).toEqual({
      giveUp:
        "instance 2 died during start 4 times in a row (each within restart.minUptimeMs, 1000 ms, of its start, before it joined) and was restarted 3 times: more than restart.maxUnstableRestarts (3)",
      failedStarts: 4,
      earlyCrashes: 4,
      crashes: 4,
    })
  })

  test("failed starts of different instances do not add up: each counts its own", () => {
    const p = policy({ maxUnstableRestarts: 1 })
    expect("restartIn" in p.crashed(0, { index: 0, failedStarts: 0, failedStart: true }, false)).toBe(true)
    expect("restartIn" in p.crashed(1, { index: 1, failedStarts: 0, failedStart: true }, false)).toBe(true)
    expect("giveUp" in p.crashed(2, { index: 0, failedStarts: 1, failedStart: true }, false)).toBe(true)
  })

  test("past the intensity: the crash after maxRestarts within windowMs, whatever the pool's size", () => {
    // 8 workers killed at once by an OOM kill, maxRestarts 5: the 6th crash gives up
    const p = policy({ maxRestarts: 5, windowMs: 60_000 })
    const v = Array.from({ length: 8 }, (_, i) =>
      p.crashed(1_000, { index: i, failedStarts: 0, failedStart: false }, false),
    )
    expect(v.findIndex((x) => "giveUp" in x)).toBe(5)
    expect(v[5]).toEqual({
      giveUp: "6 crashes within restart.windowMs (60000 ms), more than restart.maxRestarts (5)",
      failedStarts: 0,
      earlyCrashes: 0,
      crashes: 6,
    })
  })

  test("crashes older than the window no longer count", () => {
    const p = policy({ maxRestarts: 2, windowMs: 1_000 })
    const v = crashes(p, [0, 500, 1_000, 1_400, 2_500], false)
    expect(v.map((x) => x.crashes)).toEqual([1, 2, 2, 3, 1]) // at 1 000 the crash at 0 has left the window
    expect(v.map((x) => "giveUp" in x)).toEqual([false, false, false, true, false])
  })

  test("no intensity by default: two hundred crashes in a second are each restarted", () => {
    const v = crashes(
      policy(),
      Array.from({ length: 200 }, (_, i) => i),
      false,
    )
    expect(v.every((x) => "restartIn" in x)).toBe(true)
  })
})

describe("once the pool gave up", () => {
  test("a crash leaves its instance down and starts the window again; it is still counted", () => {
    const p = policy({ maxRestarts: 0, windowMs: 30_000 })
    expect("giveUp" in p.crashed(0, { index: 0, failedStarts: 0, failedStart: false }, false)).toBe(true)
    expect(p.crashed(100, { index: 1, failedStarts: 2, failedStart: true }, true)).toEqual({
      recoverIn: 30_000,
      failedStarts: 3,
      earlyCrashes: 1,
      crashes: 2,
    })
  })

  test("reset() (a start, a recovery) counts crashes from zero", () => {
    const p = policy({ maxRestarts: 1 })
    crashes(p, [0], false)
    expect(p.crashes).toBe(1)
    p.reset()
    expect(p.crashes).toBe(0)
    expect("restartIn" in p.crashed(1, { index: 0, failedStarts: 0, failedStart: false }, false)).toBe(true)
  })
})
