// docs/model/topic.pml, the SPIN model of the topic ring's fenced claims (docs/PROTOCOL.md §8.3): checked
// exhaustively (it must hold), and with each known bug put back (SPIN must find it, or the model could not fail).
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Spin, expectExhaustiveAndClean, spinSkipReason } from "../support/spin.ts"

const spin = new Spin(join(import.meta.dir, "..", "..", "docs", "model", "topic.pml"))
// ~13 million states: ~17 s and ~0.7 GB on an idle core (docs/model/README.md has the larger runs).
const TIMEOUT_MS = 240_000

const skipReason = spinSkipReason()
if (skipReason) console.warn(`the topic ring model check is skipped: ${skipReason}`)

describe.skipIf(skipReason !== null)("the topic ring model", () => {
  beforeAll(() => spin.open())
  afterAll(() => spin.close())

  test(
    "a stopped publisher's late stores never reach a committed record, and an honest ring is never read as corrupt",
    async () => {
      expectExhaustiveAndClean(await spin.check("safety"), 5_000_000)
    },
    TIMEOUT_MS,
  )

  test.each([
    ["BUG_NO_FENCE", "assertion violated"],
    ["BUG_FENCE_AFTER", "assertion violated"],
    ["BUG_NO_RECHECK", "assertion violated (d==p)"],
    ["BUG_LAP_BY_TAIL", "assertion violated ((tail-p)>3)"],
  ])(
    "SPIN finds the counterexample when %s is put back",
    async (bug, finding) => {
      const v = await spin.check(bug, { defines: [bug] })
      expect(v.errors).toBeGreaterThan(0)
      expect(v.report).toContain(`pan:1: ${finding}`)
    },
    TIMEOUT_MS,
  )
})
