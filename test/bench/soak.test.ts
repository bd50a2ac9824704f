import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { check, flip, parseSoakArgs, pattern, SoakUsageError, type SoakResult } from "../../bench/soak/soak.ts"
import { run } from "../support/helpers.ts"

const repo = join(import.meta.dir, "..", "..")

describe("the soak's answer check", () => {
  test.each([0, 1, 7, 8, 9, 4096, 65_537])("the worker's transform of a %p-byte body passes, any change fails", (n) => {
    const sent = pattern(42, n)
    const answer = new Uint8Array(n)
    flip(sent, answer)
    expect(check(sent, answer)).toEqual({ ok: true })
    if (n > 0) {
      answer[n - 1]! ^= 1
      expect(check(sent, answer).ok).toBe(false)
    }
    expect(check(sent, new Uint8Array(n + 1)).ok).toBe(false)
  })

  test("another request's answer is refused and names the request it belongs to", () => {
    const mine = pattern(7, 1000)
    const theirs = pattern(8, 1000)
    const answer = new Uint8Array(1000)
    flip(theirs, answer)
    expect(check(mine, answer)).toEqual({ ok: false, other: 8 })
  })

  test("a transform read from an unaligned view is checked byte by byte", () => {
    const sent = pattern(3, 103)
    const backing = new Uint8Array(200)
    const answer = backing.subarray(1, 104)
    flip(sent, answer)
    expect(check(sent, answer)).toEqual({ ok: true })
  })

  test.each([[["--seconds", "0"]], [["--workers", "x"]], [["--max-size", "99m"]], [["--bogus"]]])(
    "%p is a usage error",
    (args) => {
      expect(() => parseSoakArgs(args)).toThrow(SoakUsageError)
    },
  )
})

const soak = (args: string[], timeoutMs?: number) =>
  run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "soak", ...args], { cwd: repo, timeoutMs })

test("slotbus bench soak --help prints its options; a bad option exits 2 and names it", async () => {
  const help = await soak(["--help"])
  expect(help.code).toBe(0)
  expect(help.stdout).toContain("--seconds")
  const bad = await soak(["--seconds", "0"])
  expect(bad.code).toBe(2)
  expect(bad.stderr.split("\n")[0]).toContain("--seconds takes a whole number")
})

test("an 8-second soak with kill -9 and restarts gives no wrong, duplicated or hung answers", async () => {
  const p = await soak(["--seconds", "8", "--workers", "3", "--kill-every", "500", "--json"], 60_000)
  const out = p.stdout
  if (p.code !== 0) console.error(out, p.stderr)
  const r = JSON.parse(out) as SoakResult
  expect(r.problems).toEqual([])
  expect({ wrong: r.wrong, duplicated: r.duplicated, hung: r.hung }).toEqual({ wrong: 0, duplicated: 0, hung: 0 })
  expect(r.sent).toBeGreaterThan(0)
  expect(r.correct).toBeGreaterThan(0)
  expect(r.kills).toBeGreaterThan(0)
  expect(r.restarts).toBeGreaterThan(0)
  expect(r.fds.start).toBeGreaterThan(0)
  // as many workers are connected at both readings; one fd of slack for anything Bun opens lazily
  expect(r.workersAtEnd).toBe(3)
  expect(r.fds.end).toBeLessThanOrEqual(r.fds.start + 1)
  expect(r.rss_mib.start).toBeGreaterThan(0)
  expect(p.code).toBe(0)
}, 70_000)
