// test/timings.json, which `npm test` balances its two parallel runners by, names exactly the files it runs
// (scripts/timings.ts makes it from a run: `bun scripts/timings.ts --update`).
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { readTimings, suiteFiles, testScript, timingsProblems } from "../scripts/timings.ts"

const REPO = join(import.meta.dir, "..")

test("test/timings.json has a duration for every file npm test runs and for no other file", () => {
  const script = testScript()
  expect(script.timings).toBe("test/timings.json")
  expect(timingsProblems(readTimings(join(REPO, script.timings)), suiteFiles(script.ignore))).toEqual([])
})

describe("the check notices", () => {
  const files = ["test/a.test.ts", "test/core/b.test.ts"]
  test.each([
    ["a file without a duration", { "test/a.test.ts": 5 }, ["test/core/b.test.ts has no duration"]],
    [
      "a moved file's old path",
      { "test/a.test.ts": 5, "test/core/b.test.ts": 7, "test/b.test.ts": 7 },
      ["test/b.test.ts is listed, but npm test runs no such file (moved, gone or ignored)"],
    ],
  ])("%s", (_, timed, problems) => {
    expect(timingsProblems(timed, files)).toEqual(problems)
  })

  test("the files npm test ignores, by its own patterns: the .ci tests and the benches'", () => {
    const all = suiteFiles([])
    const run = suiteFiles(testScript().ignore)
    expect(run).toContain("test/timings.test.ts")
    expect(
      all.filter((f) => !run.includes(f)).every((f) => f.endsWith(".ci.test.ts") || f.startsWith("test/bench/")),
    ).toBe(true)
    expect(all.some((f) => f.startsWith("test/bench/")) && all.some((f) => f.endsWith(".ci.test.ts"))).toBe(true)
    expect(run.some((f) => f.startsWith("test/bench/") || f.endsWith(".ci.test.ts"))).toBe(false)
  })

  test("a test script without --timings", () => {
    expect(() => testScript({ scripts: { test: "bun test --parallel=2" } })).toThrow("passes no --timings=<file>")
  })
})
