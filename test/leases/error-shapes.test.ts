// A contest's "closed" and "full" errors are the shared shapes: ClosedError and FullError catch them in every room.
import { afterEach, expect, test } from "bun:test"
import { ClosedError, Contest, ContestClosedError, ContestFullError, FullError } from "../../src/leases/index.ts"
import { busName } from "../support/helpers.ts"

const open: Contest[] = []
afterEach(() => {
  for (const c of open.splice(0)) c.close()
})

test("a closed contest's claim throws ContestClosedError, which is a ClosedError", async () => {
  const c = await Contest.open(busName("closed-shape"), { capacity: 64 })
  c.close()
  let e: unknown
  try {
    c.tryClaim({ kind: 1, label: "x" })
  } catch (err) {
    e = err
  }
  expect(e).toBeInstanceOf(ContestClosedError)
  expect(e).toBeInstanceOf(ClosedError)
})

test("a claim with no room left in the subject table throws ContestFullError, which is a FullError", async () => {
  const c = await Contest.open(busName("full-shape"), { capacity: 64 })
  open.push(c)
  let e: unknown
  for (let i = 0; i <= 64 && e === undefined; i++) {
    try {
      c.tryClaim({ kind: 1, label: `s${i}` }, { ttlMs: 60_000 })
    } catch (err) {
      e = err
    }
  }
  expect(e).toBeInstanceOf(ContestFullError)
  expect(e).toBeInstanceOf(FullError)
})
