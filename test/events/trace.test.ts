// A publisher's own trace context keys (docs/PROTOCOL.md §8.3, issue 56 item 18): a `traceparent`/`tracestate`
// routing key set by hand, as an HTTP hub's client's emitted event does, goes through the one W3C parser at publish.
// Another host's keys are checked where they arrive: test/events/remote.test.ts.
import { describe, expect, test } from "bun:test"
import { Topic } from "../../src/events/index.ts"
import { busName } from "../support/helpers.ts"

const GOOD = `00-${"ab".repeat(16)}-${"cd".repeat(8)}-01`

describe("a publisher's own trace context keys", () => {
  test.each([
    [{ traceparent: `ff-${"ab".repeat(16)}-${"cd".repeat(8)}-01` }, /its routing keys: traceparent must be/],
    [{ traceparent: `${GOOD}-\x1b[2J` }, /traceparent must be a W3C traceparent/],
    [{ traceparent: GOOD, tracestate: "congo=\x1b]0;title\x07" }, /tracestate must be a W3C tracestate/],
    [{ tracestate: "congo=1" }, /goes with a traceparent/],
  ])("routing %j is a TypeError at publish, and nothing is published", async (routing, message) => {
    await using topic = await Topic.open(busName("ttrace"))
    const sub = topic.subscribe({})
    try {
      expect(() => topic.publish({ type: "t", data: "x", routing })).toThrow(message)
      expect(() => topic.publish({ type: "t", data: "x", routing })).toThrow(TypeError)
      expect(sub.poll().count).toBe(0)
    } finally {
      sub.close()
    }
  })

  test("a valid one is published as it is and read back as the event's context", async () => {
    await using topic = await Topic.open(busName("ttrace"))
    const sub = topic.subscribe({})
    try {
      topic.publish({ type: "t", data: "x", routing: { traceparent: GOOD, tracestate: "congo=1", k: "v" } })
      const ev = await sub.receive({ timeoutMs: 10_000 })
      expect(ev).toMatchObject({ traceparent: GOOD, tracestate: "congo=1", routing: { k: "v" } })
    } finally {
      sub.close()
    }
  })
})
