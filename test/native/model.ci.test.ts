// docs/model/slotbus.pml, the SPIN model of the slot protocol: checked exhaustively (it must hold), and with
// each known bug put back (SPIN must find it, or the model could not fail). Needs `spin` (Debian package) and gcc.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Spin, expectExhaustiveAndClean, spinSkipReason } from "../support/spin.ts"

const spin = new Spin(join(import.meta.dir, "..", "..", "docs", "model", "slotbus.pml"))
// Millions of states: well under a minute each on an idle core, more on a busy shared machine.
const TIMEOUT_MS = 240_000
const check = spin.check.bind(spin)

const skipReason = spinSkipReason()
if (skipReason) console.warn(`the slot protocol model check is skipped: ${skipReason}`)

describe.skipIf(skipReason !== null)("the slot protocol model", () => {
  beforeAll(() => spin.open())
  afterAll(() => spin.close())

  test(
    "the slot protocol model has no reachable assertion failure, deadlock or lost wake-up",
    async () => {
      expectExhaustiveAndClean(await check("safety", {}), 8_000_000)
    },
    TIMEOUT_MS,
  )

  test(
    "in every run of the model both sides stop: each request answered, cancelled, failed or gone, each slot free",
    async () => {
      // 2 requests, not 3: a tenth of the search (docs/model/README.md has the 3-request run's figures)
      const v = await check("terminates", { ltl: "terminates", defines: ["NREQ=2"] })
      expectExhaustiveAndClean(v, 800_000)
      expect(v.report).toContain("acceptance   cycles 	+")
    },
    TIMEOUT_MS,
  )

  test.each([
    ["BUG_NO_RECHECK", "invalid end state"],
    ["BUG_WAKER_CLEARS_FUTEX", "invalid end state"],
    ["BUG_TAIL_AFTER_PARKED", "invalid end state"],
    ["BUG_NO_GEN_CHECK", "assertion violated (resp_of[h_i]==h_req[h_i])"],
    ["BUG_TAIL_BEFORE_ENTRY", "assertion violated (((cq_tail-h_cq_head)<=2)"],
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
