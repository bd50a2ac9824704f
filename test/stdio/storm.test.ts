// What held when it was tried (hardening round four), kept: thousands of requests from the embedded caller and
// from socket clients using the same ids, given up at random moments, each settled once and to its own caller with
// nothing left on the books; and a kill -9 of a worker with 32 requests open.
import { describe, expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type StdioBus, WorkerGoneError } from "../../src/stdio/index.ts"
import { rng, until } from "../support/helpers.ts"
import { nextEvent, type RawClient, rawClient, withBus, workerConfig } from "../support/stdio/stdio.ts"

const sockPath = () => join(tmpdir(), `slotbus-storm-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
const rpc = (m: object) => JSON.stringify({ jsonrpc: "2.0", ...m })
/** A client's answers (the worker also reports each cancel it was sent back to it, as a "seen" notification). */
const answers = (c: RawClient) => c.received.filter((m) => m.method === undefined)
const instances = (bus: StdioBus) => bus.stats().pools.flatMap((p) => p.instances)
/** The books, peeked at (read only): every map a request or a client is kept in. */
const books = (bus: StdioBus) => {
  const b = (
    bus as unknown as {
      books: {
        pending: Map<unknown, unknown>
        clientRequests: Map<unknown, unknown>
        clientLoad: Map<unknown, unknown>
        awaited: number
      }
    }
  ).books
  return {
    pending: b.pending.size,
    clientRequests: b.clientRequests.size,
    clientLoad: b.clientLoad.size,
    awaited: b.awaited,
  }
}

describe("stdio bus under a storm of requests given up at random", () => {
  test("3,000 embedded requests and 3 socket clients × 1,000 with the same ids, cancelled at random moments: each settles once, to its own caller, and the books end empty", async () => {
    const seed = Date.now() >>> 0
    const random = rng(seed)
    console.log(`seed ${seed}`)
    await withBus(workerConfig("echo", 2), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const timers: ReturnType<typeof setTimeout>[] = []
      const later = (ms: number, fn: () => void) => timers.push(setTimeout(fn, ms))
      const clients: RawClient[] = []
      try {
        const embedded = Array.from({ length: 3000 }, (_, i) => {
          const ac = new AbortController()
          const reason = new Error(`given up ${i}`)
          if (random() < 0.5) later(random() * 40, () => ac.abort(reason))
          return bus
            .request("sleep", { ms: Math.floor(random() * 20), tag: `e-${i}` }, { signal: ac.signal, timeoutMs: 0 })
            .then(
              (r) => expect((r as { tag: string }).tag).toBe(`e-${i}`),
              (e) => expect(e).toBe(reason),
            )
        })
        const cancelled: Set<number>[] = []
        for (let k = 0; k < 3; k++) {
          const c = await rawClient(`unix:${path}`)
          clients.push(c)
          const mine = new Set<number>()
          cancelled.push(mine)
          let text = ""
          for (let id = 1; id <= 1000; id++) {
            text += `${rpc({ id, method: "sleep", params: { ms: Math.floor(random() * 20), tag: `c${k}-${id}` } })}\n`
            if (random() < 0.5) {
              mine.add(id)
              later(random() * 40, () => c.send(rpc({ method: "notifications/cancelled", params: { requestId: id } })))
            }
          }
          c.write(text)
        }
        await Promise.all(embedded)
        for (const [k, c] of clients.entries()) {
          const owed = 1000 - cancelled[k]!.size
          await until(
            () => answers(c).filter((m) => !cancelled[k]!.has(m.id)).length === owed,
            `client ${k}: its ${owed} requests not cancelled answered`,
            30_000,
          )
        }
        // Given-up requests leave the books after their grace: then no answer can come any more.
        await until(
          () => instances(bus).every((i) => i.inFlight === 0 && i.stuck === 0),
          "nothing in flight or stuck",
          15_000,
        )
        for (const [k, c] of clients.entries()) {
          const ids = answers(c).map((m) => m.id)
          expect(new Set(ids).size).toBe(ids.length) // each answered at most once
          for (const m of answers(c)) expect(m.result.tag).toBe(`c${k}-${m.id}`)
          const late = ids.filter((id) => cancelled[k]!.has(id)).length
          console.log(`client ${k}: ${cancelled[k]!.size} cancelled (${late} answered before their cancel came)`)
        }
        for (const c of clients) c.close()
        await Promise.all(clients.map((c) => c.closed))
        await until(() => bus.clientCount === 0, "the clients gone")
        expect(books(bus)).toEqual({ pending: 0, clientRequests: 0, clientLoad: 0, awaited: 0 })
        const s = bus.stats()
        console.log(`cancelsSent ${s.cancelsSent}, lateResponses ${s.lateResponses}, stuckDropped ${s.stuckDropped}`)
        expect(s.routingErrors).toBe(0)
      } finally {
        for (const t of timers) clearTimeout(t)
        for (const c of clients) c.close()
      }
    })
  }, 120_000)

  test("kill -9 of a worker with 32 requests open: all 32 get WorkerGoneError, every in-flight count comes back, and the new worker serves 32 at once", async () => {
    await withBus(workerConfig("echo", 1, { max_restarts: 100 }), async (bus) => {
      const pid = bus.stats().pools[0]!.instances[0]!.pid
      const open = Array.from({ length: 32 }, (_, i) => {
        const settled = bus.request("hold", { i }, { timeoutMs: 0 }).then(
          () => "answered",
          (e) => e,
        )
        return settled.then((r) => ({ r, at: performance.now() }))
      })
      await until(() => instances(bus)[0]!.inFlight === 32, "32 requests in flight")
      const restarted = nextEvent(bus, "worker-start", (e) => e.pid !== pid)
      const killedAt = performance.now()
      process.kill(pid, "SIGKILL")
      const settled = await Promise.all(open)
      for (const { r } of settled) expect(r).toBeInstanceOf(WorkerGoneError)
      const lastMs = Math.max(...settled.map((s) => s.at - killedAt))
      console.log(`kill -9 with 32 open: all WorkerGoneError, the last ${lastMs.toFixed(1)} ms after the kill`)
      expect(instances(bus)[0]).toMatchObject({ inFlight: 0, stuck: 0 })
      expect(books(bus)).toMatchObject({ pending: 0, awaited: 0 })
      const next = await restarted
      const served = await Promise.all(
        Array.from({ length: 32 }, (_, i) => bus.request("sleep", { ms: 100, tag: `n-${i}` })),
      )
      expect(served.map((r) => (r as { pid: number; tag: string }).tag)).toEqual(served.map((_, i) => `n-${i}`))
      for (const r of served) expect((r as { pid: number }).pid).toBe(next.pid)
      expect(instances(bus)[0]).toMatchObject({ inFlight: 0, stuck: 0 })
    })
  }, 30_000)
})
