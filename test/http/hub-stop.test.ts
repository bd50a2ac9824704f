// `slotbus hub --spawn` stopped (SIGTERM, systemctl stop, a terminal's Ctrl-C) while its workers hold requests: the
// hub answers new requests 503 (Connection: close), lets each worker finish what it runs, then stops it and exits 0.
// The workers here have no SIGTERM handler of their own (hubWorker's README example), so a worker SIGTERMed too
// early dies holding its requests and their clients get 502.
import { expect, test } from "bun:test"
import { alive, until } from "../support/helpers.ts"
import { halfUpload, heldHub } from "../support/http/held-hub.ts"

test.each([
  ["SIGTERM", false],
  // Ctrl-C: SIGINT to the terminal's foreground group, the hub's own here; before, it reached the workers too, which
  // died holding their requests (8 × 502)
  ["Ctrl-C", true],
] as const)(
  "%s to slotbus hub --spawn: the requests its workers hold are answered, new ones get 503, the hub exits 0",
  async (_how, group) => {
    const h = await heldHub({ instances: 2, detached: group })
    const { url, hub, ready, held, hold } = h
    try {
      await until(() => ready().length === 2, "two workers ready", 20_000)
      const pids = ready()
      const answers = Array.from({ length: 8 }, (_, i) => hold(i))
      await until(() => held() === 8, "the workers hold 8 requests", 10_000)
      if (group) hub.groupSignal("SIGINT")
      else hub.signal("SIGTERM")
      // the hub stopped taking requests (before the fix, its workers were gone by then: 502s, or the hub with them)
      let refused: { status: number; body: unknown } | string = ""
      await until(async () => {
        refused = await fetch(`${url}/ping`).then(
          async (r) => ({ status: r.status, body: await r.json().catch(() => null) }),
          (e: Error) => e.name,
        )
        return typeof refused === "string" || refused.status !== 200
      }, "the hub refuses new requests")
      h.release()
      expect(await Promise.all(answers)).toEqual(Array.from({ length: 8 }, (_, i) => `201 ${i}`))
      expect(refused).toMatchObject({ status: 503, body: { error: "unavailable" } })
      expect(await hub.exited).toBe(0)
      await until(() => pids.every((pid) => !alive(pid)), "both workers stopped", 20_000)
    } finally {
      await h.end()
    }
  },
  60_000,
)

test("SIGTERM to slotbus hub --spawn while a client uploads a request's body: it is answered once its body is in", async () => {
  const h = await heldHub({ instances: 1 })
  const { url, hub, ready } = h
  try {
    await until(() => ready().length === 1, "the worker ready", 20_000)
    const pid = ready()[0]!
    h.release() // /hold answers at once
    const half = "7".repeat(500)
    const upload = await halfUpload(url, "/hold", half)
    hub.signal("SIGTERM")
    await until(async () => {
      const r = await fetch(`${url}/ping`).catch(() => null)
      return r === null || r.status !== 200
    }, "the hub refuses new requests")
    // before: the worker was SIGTERMed as it ran nothing, the upload then answered 503 or cut off
    const answer = await upload.finish()
    expect(answer).toStartWith("HTTP/1.1 201")
    expect(answer.endsWith(half + half)).toBe(true)
    expect(await hub.exited).toBe(0)
    await until(() => !alive(pid), "the worker stopped", 20_000)
  } finally {
    await h.end()
  }
}, 60_000)
