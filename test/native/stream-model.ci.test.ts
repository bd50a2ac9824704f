// docs/model/stream.pml, the SPIN model of one streamed answer (docs/PROTOCOL.md §9.11): checked exhaustively (it
// must hold), and with each known bug put back (SPIN must find it, or the model could not fail). Needs `spin`
// (Debian package) and gcc. The model's default bounds (3 DATA frames, a window of 2 frames plus END's reserve)
// take seconds per check: 6.5 M states for safety, 6.4 M for `terminates`, 10.2 M for `cancel_ends`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Spin, expectExhaustiveAndClean, spinSkipReason } from "../support/spin.ts"

const spin = new Spin(join(import.meta.dir, "..", "..", "docs", "model", "stream.pml"))
// 4–10 s each on an idle core; a busy shared machine can take several times that.
const TIMEOUT_MS = 240_000
const check = spin.check.bind(spin)

const skipReason = spinSkipReason()
if (skipReason) console.warn(`the stream model check is skipped: ${skipReason}`)

describe.skipIf(skipReason !== null)("the stream model", () => {
  beforeAll(() => spin.open())
  afterAll(() => spin.close())

  test(
    "the stream model has no reachable assertion failure, deadlock or lost wake-up: no frame lost, overwritten unread, read twice or after the END",
    async () => {
      expectExhaustiveAndClean(await check("safety", {}), 6_000_000)
    },
    TIMEOUT_MS,
  )

  test(
    "in every run of the stream model both sides stop, with no fairness assumed (terminates)",
    async () => {
      const v = await check("terminates", { ltl: "terminates" })
      expectExhaustiveAndClean(v, 6_000_000)
      expect(v.report).toContain("acceptance   cycles 	+")
    },
    TIMEOUT_MS,
  )

  test(
    "a cancel always ends both sides of the stream model, with no fairness assumed (cancel_ends)",
    async () => {
      const v = await check("cancel_ends", { ltl: "cancel_ends" })
      expectExhaustiveAndClean(v, 9_000_000)
      expect(v.report).toContain("acceptance   cycles 	+")
    },
    TIMEOUT_MS,
  )

  test(
    "the liveness check can fail: cancel_ends finds a cancelled worker that never ends when END's reserve is gone",
    async () => {
      const v = await check("cancel_ends-BUG_NO_END_RESERVE", { ltl: "cancel_ends", defines: ["BUG_NO_END_RESERVE"] })
      expect(v.errors).toBeGreaterThan(0)
      expect(v.report).toContain("pan:1: acceptance cycle")
    },
    TIMEOUT_MS,
  )

  test.each([
    ["BUG_NO_END_RESERVE", "invalid end state"],
    ["BUG_LOAD_BEFORE_CLEAR", "assertion violated h_end_seen"],
    ["BUG_RECLAIM_AT_END", "assertion violated  !(h_reclaimed)"],
    ["BUG_NO_CREDIT_RECHECK", "invalid end state"],
  ])(
    "SPIN finds the counterexample when %s is put back",
    async (bug, finding) => {
      const v = await check(bug, { defines: [bug] })
      expect(v.errors).toBeGreaterThan(0)
      expect(v.report).toContain(`pan:1: ${finding}`)
    },
    TIMEOUT_MS,
  )
})
