// The third process of the tracing tests: subscribes to <topic> and, per event, starts a span linked to its
// publisher's context (event.link) with the real OpenTelemetry SDK, printing `span <json>` lines and
// `event <traceparent> <routing>` and `state <tracestate> <link's trace id>`. Usage: bun trace-subscriber.ts <topic>. Prints "ready" once subscribed.
import { trace } from "@opentelemetry/api"
import { Topic } from "../../../src/events/index.ts"
import { registerOtel, stdoutExporter } from "../otel-setup.ts"

registerOtel(stdoutExporter)
const topic = await Topic.open(process.argv[2]!)
const sub = topic.subscribe({ type: "seen" })
console.log("ready")
const tracer = trace.getTracer("trace-subscriber")
for await (const ev of sub) {
  const span = tracer.startSpan("process seen", { links: ev.link ? [ev.link] : [] })
  console.log(`event ${ev.traceparent ?? "none"} ${JSON.stringify(ev.routing)}`)
  console.log(`state ${ev.tracestate ?? "none"} ${ev.link ? ev.link.context.traceId : "no-link"}`)
  span.end()
}
