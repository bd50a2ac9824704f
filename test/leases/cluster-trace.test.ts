// A cluster contest's claim carries its claimer's W3C trace context in its key's value (docs/PROTOCOL.md §12.1):
// holders show it, renewals and the release keep it, and whoever takes the subject over (after the holder was
// killed -9 and its TTL ran out, or after a release) gets the replaced claim's context and, with the real
// OpenTelemetry SDK, a span `claim <label>` linked to it (the holder change). A real nats-server with JetStream; the
// holder is another process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { trace } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Contest, ProtocolError } from "../../src/leases/index.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { busName, FIXTURES, rejection, spawn, type Child } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"
import { registerOtel, spanLine } from "../support/otel-setup.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the cluster contest trace tests are skipped: ${skip}`)

const exporter = new InMemorySpanExporter()
let unregister: () => Promise<void>
let nats: { url: string; server: Child }
beforeAll(async () => {
  unregister = registerOtel(exporter)
  if (!skip) nats = await startNats({ jetstream: true })
}, 30_000)
afterAll(async () => {
  await nats?.server.kill()
  await unregister()
})

const given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
const givenState = "vendor=a1b2,other=x"
const S = { kind: 9, label: "leader" } // the subject test/support/conformance/conformance-lease.ts claims
const KEY = "9.bGVhZGVy"
const open = (name: string) => Contest.open(name, { remote: viaNats(nats.url) })
const claimSpans = (label: string) =>
  exporter
    .getFinishedSpans()
    .map(spanLine)
    .filter((s) => s.name === `claim ${label}`)

async function rawKv<T>(bucket: string, f: (kv: Awaited<ReturnType<Kvm["open"]>>) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: nats.url })
  try {
    return await f(await new Kvm(nc).open(bucket))
  } finally {
    await nc.close()
  }
}

describe.skipIf(skip !== null)("a cluster contest's trace context", () => {
  test("a holder killed -9 in another process: who takes over at its TTL gets its context and a claim span linked to it", async () => {
    exporter.reset()
    const name = busName("kv-trace")
    const holder = spawn(
      [process.execPath, join(FIXTURES, "conformance/conformance-lease.ts"), "nats", nats.url, name, S.label, "1500"],
      { env: { ...process.env, TRACEPARENT: given, TRACESTATE: givenState } },
    )
    const taker = await open(name)
    try {
      const token = BigInt((await holder.waitLine(/^claimed (\d+)$/, 20_000))[1]!)
      const held = await taker.holders()
      expect(held.map((h) => [h.token, h.traceparent, h.tracestate])).toEqual([[token, given, givenState]])
      const value = await rawKv(taker.bucket, async (kv) => JSON.parse((await kv.get(KEY))!.string()))
      expect(value).toMatchObject({ state: "held", traceparent: given, tracestate: givenState })
      await holder.kill("SIGKILL")
      const lease = await trace.getTracer("test").startActiveSpan("take over", async (span) => {
        try {
          const l = await taker.claim(S, { ttlMs: 1500, timeoutMs: 20_000 })
          expect(l.traceparent!.split("-")[1]).toBe(span.spanContext().traceId)
          expect(l.traceparent!.split("-")[2]).toBe(span.spanContext().spanId)
          return l
        } finally {
          span.end()
        }
      })
      expect(lease.from).toBe("expired")
      expect(lease.token).toBeGreaterThan(token)
      expect(lease.replacedTraceparent).toBe(given)
      const [claim, ...more] = claimSpans(S.label)
      expect(more).toEqual([])
      expect(claim!.links).toEqual([{ traceId: given.split("-")[1]!, spanId: given.split("-")[2]! }])
      expect(claim!.attributes).toMatchObject({
        "slotbus.lease.from": "expired",
        "slotbus.lease.token": String(lease.token),
      })
      const link = exporter.getFinishedSpans().find((s) => s.name === `claim ${S.label}`)!.links[0]!
      expect(link.context.traceState?.serialize()).toBe(givenState)
      await lease.release()
    } finally {
      await holder.kill("SIGKILL")
      await taker.close()
    }
  }, 60_000)

  test("renewals keep the context; released, the next claim replaces the released one's and stores its own", async () => {
    const name = busName("kv-trace")
    await using a = await open(name)
    await using b = await open(name)
    const first = await a.claim(S, { ttlMs: 10_000, traceparent: given })
    expect(first.traceparent).toBe(given)
    expect(first.replacedTraceparent).toBeUndefined()
    await first.renew(10_000)
    expect((await b.holders()).map((h) => h.traceparent)).toEqual([given])
    await first.release()
    const free = await rawKv(a.bucket, async (kv) => JSON.parse((await kv.get(KEY))!.string()))
    expect(free).toEqual({ v: 1, state: "free", token: String(first.token), traceparent: given })
    const next = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    const second = await b.claim(S, { ttlMs: 10_000, traceparent: next })
    expect(second.from).toBe("free")
    expect(second.replacedTraceparent).toBe(given)
    expect(second.traceparent).toBe(next)
    expect((await a.holders()).map((h) => [h.traceparent, h.tracestate])).toEqual([[next, undefined]])
    await second.release()
  }, 30_000)

  test("a value without a context (an older member's) is read as before; unknown fields are ignored", async () => {
    const name = busName("kv-trace")
    await using a = await open(name)
    const older = { v: 1, state: "held", token: "5", claim: "x.1", owner: "old", ttlMs: 600, host: "h", pid: 1 }
    await rawKv(a.bucket, (kv) => kv.put(KEY, JSON.stringify({ ...older, later: { field: true } })))
    expect((await a.holders()).map((h) => [h.owner, h.traceparent])).toEqual([["old", undefined]])
    const lease = await a.claim(S, { ttlMs: 1000, timeoutMs: 20_000, traceparent: given })
    expect(lease.from).toBe("expired")
    expect(lease.replacedTraceparent).toBeUndefined()
    expect(lease.traceparent).toBe(given)
    await lease.release()
  }, 30_000)

  test("a value whose traceparent or tracestate is malformed is not a lease: ProtocolError, and nothing writes over it", async () => {
    const name = busName("kv-trace")
    await using a = await open(name)
    const base = { v: 1, state: "free", token: "5" }
    for (const bad of [
      { traceparent: "00-zz-00f067aa0ba902b7-01" },
      { traceparent: `00-${"0".repeat(32)}-00f067aa0ba902b7-01` },
      { traceparent: 7 },
      { tracestate: "vendor=1" }, // a tracestate without a traceparent
      { traceparent: given, tracestate: "x".repeat(513) },
      { traceparent: given, tracestate: "bad\u0001char" },
    ]) {
      const value = JSON.stringify({ ...base, ...bad })
      await rawKv(a.bucket, (kv) => kv.put(KEY, value))
      const err = await rejection(a.tryClaim(S, { ttlMs: 1000 }))
      expect(err).toBeInstanceOf(ProtocolError)
      expect((err as Error).message).toContain(KEY)
      expect((err as Error).message).toContain("traceparent or tracestate")
      expect(await rawKv(a.bucket, async (kv) => (await kv.get(KEY))!.string())).toBe(value)
    }
  }, 30_000)

  test("a value that is JSON but not an object (null, a number, a string) is not a lease either: ProtocolError", async () => {
    const name = busName("kv-trace")
    await using a = await open(name)
    for (const value of ["null", "7", '"held"']) {
      await rawKv(a.bucket, (kv) => kv.put(KEY, value))
      const err = await rejection(a.tryClaim(S, { ttlMs: 1000 }))
      expect(err).toBeInstanceOf(ProtocolError)
      expect(await rawKv(a.bucket, async (kv) => (await kv.get(KEY))!.string())).toBe(value)
    }
  }, 30_000)

  test("a malformed traceparent or tracestate option is a TypeError, and nothing is written", async () => {
    const name = busName("kv-trace")
    await using a = await open(name)
    for (const opts of [
      { traceparent: "nope" },
      { tracestate: "vendor=1" },
      { traceparent: given, tracestate: "x".repeat(513) },
    ]) {
      expect(await rejection(a.tryClaim(S, { ttlMs: 1000, ...opts }))).toBeInstanceOf(TypeError)
      expect(await rejection(a.claim(S, { ttlMs: 1000, ...opts }))).toBeInstanceOf(TypeError)
    }
    expect(await rawKv(a.bucket, (kv) => kv.get(KEY))).toBeNull()
  }, 30_000)
})
