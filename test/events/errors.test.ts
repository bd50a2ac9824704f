// A topic's errors: "closed" and "full" are the shared shapes (ClosedError, FullError catch them in every room), and
// what the system refuses is a SystemError with its errno as data.
import { afterEach, expect, test } from "bun:test"
import { constants } from "node:os"
import { ClosedError, FullError, Topic, TopicClosedError, TopicFullError } from "../../src/events/index.ts"
import { busName, FIXTURES, run } from "../support/helpers.ts"

const cleanup: { close(): void }[] = []
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c.close()
})

function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error("expected a throw")
}

test("a closed topic's publish throws TopicClosedError, which is a ClosedError", async () => {
  const t = await Topic.open(busName("closed-shape"))
  t.close()
  const e = thrown(() => t.publish({ type: "x" }))
  expect(e).toBeInstanceOf(TopicClosedError)
  expect(e).toBeInstanceOf(ClosedError)
})

test("a rule beyond the topic's rule table throws TopicFullError, which is a FullError", async () => {
  const t = await Topic.open(busName("full-shape"))
  cleanup.push(t)
  let e: unknown
  for (let i = 0; i <= 64 && e === undefined; i++) {
    try {
      t.bind({ type: `t${i}`, keys: ["a", "b"], fill: "c" })
    } catch (err) {
      e = err
    }
  }
  expect(e).toBeInstanceOf(TopicFullError)
  expect(e).toBeInstanceOf(FullError)
})

test("a subscribe in a process at its open-file limit throws a SystemError whose errno and code are EMFILE", async () => {
  // the child takes every fd `ulimit -n` leaves it, so its subscription's wake socket cannot be made
  const r = await run(
    [
      "sh",
      "-c",
      'ulimit -n 256 && exec "$0" "$@"',
      process.execPath,
      `${FIXTURES}/events/topic-no-fds.ts`,
      busName("nofd"),
    ],
    { timeoutMs: 30_000 },
  )
  expect(r.stderr).toBe("")
  expect(JSON.parse(r.stdout)).toMatchObject({
    threw: true,
    name: "SystemError",
    slotbus: true,
    errno: constants.errno.EMFILE,
    code: "EMFILE",
  })
}, 60_000)
