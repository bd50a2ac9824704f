// A lease claim carries its claimer's W3C trace context (docs/PROTOCOL.md §7.2, entry +224): holders show it, and
// whoever takes the subject over gets the replaced claim's context and, with the OpenTelemetry SDK, a span linked
// to it (the holder change).
import { afterAll, beforeAll, expect, test } from "bun:test"
import { trace } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Contest } from "../../src/leases/index.ts"
import { bunChild, busName } from "../support/helpers.ts"
import { registerOtel, spanLine } from "../support/otel-setup.ts"

const exporter = new InMemorySpanExporter()
let unregister: () => Promise<void>
beforeAll(() => {
  unregister = registerOtel(exporter)
})
afterAll(async () => {
  await unregister()
})

const given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

test("a claim stores its claimer's context; who takes over after a kill -9 links to it", async () => {
  const name = busName("lease-trace")
  const contest = (await Contest.open(name)) as Contest
  const holder = bunChild("leases/lease-member.ts", ["hold", name, "s"], {
    env: { ...process.env, TRACEPARENT: given },
  })
  try {
    await holder.waitLine(/^held /, 15_000)
    expect(contest.holders().map((h) => h.traceparent)).toEqual([given])
    await holder.kill("SIGKILL")
    const tracer = trace.getTracer("test")
    const lease = await tracer.startActiveSpan("take over", async (span) => {
      try {
        const l = await contest.claim({ kind: 7, label: "s" }, { timeoutMs: 10_000 })
        expect(l.traceparent!.split("-")[1]).toBe(span.spanContext().traceId)
        return l
      } finally {
        span.end()
      }
    })
    expect(lease.from).toBe("holder-gone")
    expect(lease.replacedTraceparent).toBe(given)
    const claim = exporter
      .getFinishedSpans()
      .map(spanLine)
      .find((s) => s.name === "claim s")!
    expect(claim.links).toEqual([{ traceId: given.split("-")[1]!, spanId: given.split("-")[2]! }])
    expect(claim.attributes["slotbus.lease.from"]).toBe("holder-gone")
    lease.release()
  } finally {
    await holder.kill("SIGKILL")
    contest.close()
  }
}, 30_000)
