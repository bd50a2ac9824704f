// Waiting is near-free: however many claims wait, the process has one waiter thread per contest, sleeping
// on the futexes of the waited subjects only; timeouts fire, and a release reaches every waiter in turn.
import { afterEach, expect, test } from "bun:test"
import { readdirSync, readFileSync } from "node:fs"
import { Contest, TimeoutError } from "../../src/leases/index.ts"
import { busName, stopAll } from "../support/helpers.ts"

afterEach(stopAll)

const threads = () => readdirSync("/proc/self/task").length
// our threads by name (the runtime starts GC and JIT helpers of its own under load)
const named = (name: string) =>
  readdirSync("/proc/self/task").filter((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === name
    } catch {
      return false // exited meanwhile
    }
  }).length

test("10 000 waiting claims cost one thread, and every one of them rejects with TimeoutError when its time is up", async () => {
  using c = await Contest.open(busName("waiters"))
  const subject = { kind: 1, label: "busy" }
  const held = c.tryClaim(subject, { owner: "holder" })
  if (!held.claimed) throw new Error("not claimed")
  const before = threads()
  const cpu0 = process.cpuUsage()
  const waits = Array.from({ length: 10_000 }, (_, i) =>
    c.claim(subject, { owner: `w${i}`, timeoutMs: 1500 }).then(
      () => "claimed",
      (e) => (e instanceof TimeoutError ? "timeout" : `other: ${e}`),
    ),
  )
  await Bun.sleep(300)
  const during = threads()
  const waiterThreads = named("sbl-waiter")
  const settled = await Promise.all(waits)
  const cpu = process.cpuUsage(cpu0)
  const counts = settled.reduce<Record<string, number>>((m, s) => ((m[s] = (m[s] ?? 0) + 1), m), {})
  console.log(
    `10 000 waiters: threads ${before} → ${during}; ${((cpu.user + cpu.system) / 1e6).toFixed(2)} CPU-s in all (not asserted); ${JSON.stringify(counts)}`,
  )
  expect(counts).toEqual({ timeout: 10_000 })
  expect(waiterThreads).toBe(1)
  expect(during - before).toBeLessThanOrEqual(8) // one waiter thread plus the runtime's helpers, not one per waiter
  await Bun.sleep(50)
  expect(c.waiterState()).toEqual({ waiting: 0, thread: false })
  expect(named("sbl-waiter")).toBe(0)
  held.lease.release()
}, 60_000)

test("2 000 claims waiting on one subject each get it once it is released, one after another, tokens increasing", async () => {
  using c = await Contest.open(busName("waiters-all"))
  const subject = { kind: 1, label: "baton" }
  const held = c.tryClaim(subject)
  if (!held.claimed) throw new Error("not claimed")
  const tokens: bigint[] = []
  const waits = Array.from({ length: 2000 }, (_, i) =>
    c.claim(subject, { owner: `w${i}`, timeoutMs: 30_000 }).then((lease) => {
      tokens.push(lease.token)
      lease.release()
    }),
  )
  await Bun.sleep(50)
  held.lease.release()
  await Promise.all(waits)
  expect(tokens.length).toBe(2000)
  for (let i = 1; i < tokens.length; i++) expect(tokens[i]! > tokens[i - 1]!).toBe(true)
  await Bun.sleep(20)
  expect(c.waiterState()).toEqual({ waiting: 0, thread: false })
}, 60_000)

test("waiters on several subjects wake for their own subject only", async () => {
  using c = await Contest.open(busName("waiters-many"))
  const leases = Array.from({ length: 200 }, (_, i) => {
    const r = c.tryClaim({ kind: 2, label: `s${i}` })
    if (!r.claimed) throw new Error("not claimed")
    return r.lease
  })
  const got: number[] = []
  const waits = leases.map((_, i) =>
    c.claim({ kind: 2, label: `s${i}` }, { timeoutMs: 20_000 }).then((l) => (got.push(i), l.release())),
  )
  await Bun.sleep(50)
  for (let i = 0; i < 200; i += 2) leases[i]!.release() // more than the 127 futexes one futex_waitv takes
  await Bun.sleep(200)
  expect(got.length).toBe(100)
  expect(got.every((i) => i % 2 === 0)).toBe(true)
  for (let i = 1; i < 200; i += 2) leases[i]!.release()
  await Promise.all(waits)
  expect(got.length).toBe(200)
}, 60_000)
