// lease.check(): the synchronous check right before a side effect. It judges the claim against the clock at
// the call and throws LeaseLostError saying why the lease is gone.
import { afterEach, expect, test } from "bun:test"
import { Contest, type Lease, LeaseLostError } from "../../src/leases/index.ts"

let seq = 0
const fresh = () => `check-${process.pid}-${seq++}`
const open: Contest[] = []
afterEach(() => {
  for (const c of open.splice(0)) c.close()
})
async function contest(name = fresh()): Promise<Contest> {
  const c = await Contest.open(name)
  open.push(c)
  return c
}
function claim(c: Contest, label: string, ttlMs?: number): Lease {
  const r = c.tryClaim({ kind: 1, label }, { owner: "me", ttlMs })
  if (!r.claimed) throw new Error(`${label} was not claimed`)
  return r.lease
}
function lostWhy(lease: Lease): string {
  try {
    lease.check()
  } catch (e) {
    expect(e).toBeInstanceOf(LeaseLostError)
    return (e as Error).message
  }
  throw new Error("check() did not throw")
}

test("check() passes while the lease is ours and throws once it is released, saying so", async () => {
  const c = await contest()
  const lease = claim(c, "job", 60_000)
  lease.check()
  expect(lease.held).toBe(true)
  lease.release()
  expect(lostWhy(lease)).toMatch(/subject 1\/"job" \(token \d+\) was released; claim it again/)
})

test("check() judges expiry on the clock at the call: no timer has to run first", async () => {
  const c = await contest()
  const lease = claim(c, "short", 20)
  const until = lease.expiresAt
  while (Date.now() < until) Bun.sleepSync(1) // the event loop never turns: no expiry timer can have fired
  expect(lostWhy(lease)).toContain(`expired at ${new Date(until).toISOString()}`)
})

test("check() throws once another member resets the subject, and once its contest is closed", async () => {
  const name = fresh()
  const mine = await contest(name)
  const other = await contest(name)
  const lease = claim(mine, "reset-me", 60_000)
  other.reset({ kind: 1, label: "reset-me" })
  expect(lostWhy(lease)).toContain("was taken over or reset")
  const second = claim(mine, "closing", 60_000)
  mine.close()
  expect(lostWhy(second)).toContain("its contest was closed")
})
