// The hub's pick over the processes of a name (registry.ts): a worker that answers quickly takes a burst whole,
// not half of it with the other woken for the rest, as a bus's dispatcher does (test/core/endpoint/pack.test.ts).
import { afterAll, expect, test } from "bun:test"
import { createHub } from "../../src/http/index.ts"
import { stopAll } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"

const hub = await createHub({ port: 0, quiet: true })
afterAll(async () => {
  await stopAll()
  await hub.close()
})

/** `n` bursts of 8 GET /whoami in flight at once: how many each worker pid answered, most first. */
async function bursts(n: number) {
  const byPid = new Map<number, number>()
  for (let b = 0; b < n; b++) {
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => fetch(`${hub.url}/whoami`).then((r) => r.json() as Promise<{ pid: number }>)),
    )
    for (const { pid } of answers) byPid.set(pid, (byPid.get(pid) ?? 0) + 1)
  }
  return [...byPid.values()].sort((a, b) => b - a)
}

test("bursts of 8 quick requests to a name of two worker processes go mostly to one of them", async () => {
  await startWorker(hub.url, "who")
  await startWorker(hub.url, "who")
  await bursts(50) // both answered: each has a rate
  // A rate is measured in wall time: on a loaded machine a descheduled worker looks slow for a while and bursts
  // spread, as they should. So up to ten rounds, one of which must pack 60% to one worker; fewest in flight and round
  // robin on ties made every round 800 and 800. (Five rounds and 70%: under two CPU burners the best of five was
  // 861-1,026 of 1,600, and 2 of 8 runs failed.)
  const PACKED = 1600 * 0.6
  const rounds: number[][] = []
  for (let r = 0; r < 10 && !((rounds.at(-1)?.[0] ?? 0) > PACKED); r++) rounds.push(await bursts(200))
  for (const counts of rounds) expect(counts.reduce((a, b) => a + b, 0)).toBe(1600)
  expect(Math.max(...rounds.map((c) => c[0]!))).toBeGreaterThan(PACKED)
}, 120_000)
