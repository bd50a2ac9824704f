// A hub out of file descriptors (EMFILE at accept) says so: its front, run under `ulimit -n` and at that limit, logs a
// line naming EMFILE, each worker that does not fit fails with an error naming it (not "no hub is listening"), and
// the workers that fit are served.
import { afterAll, expect, test } from "bun:test"
import { join } from "node:path"
import { busName, type Child, ECHO_WORKER, FIXTURES, spawn, stopAll, until } from "../../support/helpers.ts"

afterAll(() => stopAll())

const WORKERS = 6

test("workers over a front's fd limit are refused with EMFILE named on both sides; those that fit are served", async () => {
  const name = busName("fds")
  const front = spawn(
    ["sh", "-c", 'ulimit -n 256 && exec "$0" "$@"', process.execPath, join(FIXTURES, "core/fd-front.ts"), name, "24"],
    { stdin: "pipe" },
  )
  await front.waitLine(/^ready$/, 30_000)
  const workers: Child[] = []
  const outcomes: string[] = []
  for (let i = 0; i < WORKERS; i++) {
    const w = spawn([process.execPath, ECHO_WORKER, name])
    workers.push(w)
    const ready = await w.waitLine(/^ready$/, 60_000).then(
      () => true,
      () => false, // it ended without
    )
    outcomes.push(ready ? "ready" : `exit ${await w.exited}: ${/\w+Error: .*/.exec(w.stderr)?.[0]}`)
  }
  const fit = outcomes.filter((o) => o === "ready").length
  console.log(`${fit} of ${WORKERS} workers fit; the others: ${outcomes.find((o) => o !== "ready")}`)
  expect(fit).toBeGreaterThanOrEqual(1)
  expect(fit).toBeLessThan(WORKERS)
  for (const o of outcomes.filter((o) => o !== "ready"))
    expect(o).toStartWith(
      `exit 1: PeerRefusedError: hub "${name}" could not accept this worker: the hub is out of file descriptors (EMFILE`,
    )
  expect(front.stderr).toContain(`slotbus: bus "${name}" cannot accept a worker: out of file descriptors (EMFILE`)
  front.write("call\n")
  const served = await front.waitLine(/^served (\d+) (\d+)$/, 30_000)
  expect([Number(served[1]), Number(served[2])]).toEqual([fit, fit])
  for (const w of workers) await w.kill()
  await front.kill()
  await until(() => !front.running, "the front ended")
}, 120_000)
