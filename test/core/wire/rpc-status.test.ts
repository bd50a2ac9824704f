// An RPC reply's status means what docs/PROTOCOL.md §6.1 says, and the same everywhere the hub reads it: the caller's
// error (decodeReply), the metrics' errors by kind and slowest outcomes, and the CLIENT span's error.type all come
// from one definition (core/wire/rpc-status.ts). A status that is no RPC reply, from a plain handler, is an
// UnknownMethodError for an RPC call and means nothing RPC for a plain request.
import { expect, test } from "bun:test"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { SlotBus, UnknownMethodError } from "../../../src/index.ts"
import { METRICS } from "../../../src/status/index.ts"
import { RetiredRpc, rpcErrorOf, RpcStatus } from "../../../src/core/wire/rpc-status.ts"
import { busName, rejection, spawnWorker } from "../../support/helpers.ts"
import { registerOtel } from "../../support/otel-setup.ts"

/** The bus's slotbus_request_errors_total samples, as kind → count. */
function errorKinds(bus: SlotBus): Record<string, number> {
  const f = bus[METRICS]().find((x) => x.name === "slotbus_request_errors_total")!
  // the kinds that happened (the usual ones are there at 0 from the start)
  return Object.fromEntries(f.samples.flatMap((s) => ("value" in s && s.value > 0 ? [[s.labels.kind, s.value]] : [])))
}

test.each([
  [RpcStatus.RESULT_JSON, null],
  [RpcStatus.RESULT_BYTES, null],
  [RpcStatus.THROWN_JSON, "RemoteError"],
  [RpcStatus.RESULT_CBOR, null],
  [RpcStatus.THROWN_CBOR, "RemoteError"],
  [RetiredRpc.RESULT, "ProtocolError"], // an older worker's structured clone, which no runtime but its own reads
  [RetiredRpc.THROWN, "ProtocolError"],
  [RpcStatus.NO_SUCH_METHOD, "UnknownMethodError"],
  [200, "UnknownMethodError"], // a plain handler answered
  [732, "UnknownMethodError"],
])("an RPC reply of status %d is %p to its caller", (status, error) => {
  expect<string | null>(rpcErrorOf(status)).toBe(error)
})

test("a plain handler's answer to an RPC call counts as UnknownMethodError, and a plain request's status 731 as no RPC error", async () => {
  const bus = await SlotBus.listen(busName("rpc-status"))
  const worker = await spawnWorker(bus.name) // echo-worker.ts: a plain handler, status from x-status
  try {
    await bus.waitForWorkers(1)
    const e = await rejection(bus.invoke("add", [1, 2]))
    expect(e).toBeInstanceOf(UnknownMethodError)
    const r = await bus.request({ path: "/x", headers: { "x-status": "731" } })
    expect(r.status).toBe(731)
    expect(errorKinds(bus)).toEqual({ UnknownMethodError: 1 })
  } finally {
    await worker.kill()
    await bus.close({ drain: false })
  }
}, 30_000)

test("the CLIENT span of an RPC call a plain handler answered is an error of error.type UnknownMethodError, as its caller's", async () => {
  const exporter = new InMemorySpanExporter()
  const unregister = registerOtel(exporter)
  const bus = await SlotBus.listen(busName("rpc-status-span"))
  const worker = await spawnWorker(bus.name)
  try {
    await bus.waitForWorkers(1)
    expect(await rejection(bus.invoke("add", [1, 2]))).toBeInstanceOf(UnknownMethodError)
    const span = exporter.getFinishedSpans().find((s) => s.name === `${bus.name}/add`)
    expect(span?.attributes["error.type"]).toBe("UnknownMethodError")
  } finally {
    await worker.kill()
    await bus.close({ drain: false })
    await unregister()
  }
}, 30_000)
