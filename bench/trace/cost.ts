// What tracing costs a round trip (docs/api.md, Traces): `bun bench/trace/cost.ts <mode>`, one raw call of 64 B in
// flight between two Bun processes, the median of 5 runs of 20,000 after 20,000 of warm-up.
//   off           no context, no SDK
//   context       an explicit { traceparent } on every call, no SDK (the context rides in the head)
//   sdk-untraced  the OpenTelemetry SDK registered in both processes, calls outside any trace (no spans)
//   sdk           the SDK in both, every call inside an active span: a CLIENT and a SERVER span per call,
//                 BatchSpanProcessor (what production uses) with an exporter that drops them, AsyncLocalStorage context
import { SlotBus, SlotWorker } from "../../src/index.ts"

const MODES = ["off", "context", "sdk-untraced", "sdk"]
const [mode = "off", role, name] = process.argv.slice(2)
if (!MODES.includes(mode)) throw new Error(`usage: bun bench/trace/cost.ts ${MODES.join("|")}`)
const withSdk = mode.startsWith("sdk")

async function registerSdk() {
  const { context, trace } = await import("@opentelemetry/api")
  const { AsyncLocalStorageContextManager } = await import("@opentelemetry/context-async-hooks")
  const { BasicTracerProvider, BatchSpanProcessor } = await import("@opentelemetry/sdk-trace-base")
  const drop = {
    export: (_: unknown, done: (r: { code: number }) => void) => done({ code: 0 }),
    shutdown: async () => {},
  }
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop)] }))
}

if (role === "worker") {
  if (withSdk) await registerSdk()
  await SlotWorker.connect(name!, (req) => req.body)
} else {
  if (withSdk) await registerSdk()
  const bus = await SlotBus.listen(`trace-cost-${process.pid}`)
  const worker = Bun.spawn([process.execPath, import.meta.path, mode, "worker", bus.name], { stdout: "inherit" })
  try {
    await bus.waitForWorkers(1)
    const body = new Uint8Array(64)
    const opts = mode === "context" ? { traceparent: "00-0af7651916cd43dd8448eb7b319ad0a1-b7ad6b7169203331-01" } : {}
    const { trace } = withSdk ? await import("@opentelemetry/api") : { trace: null }
    const inTrace = (f: () => Promise<void>) =>
      mode === "sdk" ? trace!.getTracer("cost").startActiveSpan("bench", (s) => f().finally(() => s.end())) : f()
    const calls = async (n: number) => {
      for (let i = 0; i < n; i++) await bus.call(body, opts)
    }
    await inTrace(() => calls(20_000))
    const runs: number[] = []
    for (let r = 0; r < 5; r++)
      await inTrace(async () => {
        const t = Bun.nanoseconds()
        await calls(20_000)
        runs.push((Bun.nanoseconds() - t) / 20_000 / 1000)
      })
    runs.sort((a, b) => a - b)
    console.log(
      `${mode}: median ${runs[2]!.toFixed(2)} µs per round trip (runs ${runs.map((x) => x.toFixed(2)).join(", ")})`,
    )
  } finally {
    worker.kill()
    await bus.close({ drain: false })
  }
}
