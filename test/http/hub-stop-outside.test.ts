// Plain `slotbus hub` (no --spawn) stopped (SIGTERM, systemctl stop) while workers that joined it from outside (started
// by the user, under Bun or Node) hold requests, or while a client still uploads one: the hub answers new requests 503
// (Connection: close), lets those requests be answered, then closes and exits 0; the workers see their hub closed and
// keep trying to rejoin.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Child, FIXTURES, freePort, spawn, until } from "../support/helpers.ts"
import { halfUpload } from "../support/http/held-hub.ts"
import { PEER_RUNTIMES, type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

afterAll(removeNodeBuilds)

/** A plain `slotbus hub` and one outside worker of `runtime` (node-hub-worker.ts) joined to it, for `body`. */
async function withHub(
  runtime: PeerRuntime,
  body: (o: { hub: Child; worker: Child; url: string; release: string }) => Promise<void>,
) {
  const dir = mkdtempSync(join(tmpdir(), "hub-stop-outside-"))
  const tokenFile = join(dir, "hub.token")
  const release = join(dir, "release")
  const url = `http://127.0.0.1:${await freePort()}`
  const hub = spawn([
    process.execPath,
    join(FIXTURES, "..", "..", "bin", "slotbus.ts"),
    ...["hub", "--port", new URL(url).port, "--token-file", tokenFile],
  ])
  let worker: Child | null = null
  try {
    await hub.waitLine(/listening on/, 20_000)
    worker = await peerChild(runtime, "runtime/node-hub-worker.ts", [url, "shop", tokenFile, release])
    await worker.waitLine(/^ready \d+$/, 20_000)
    await body({ hub, worker, url, release })
    // the worker saw its hub close (as a hub restart does) and keeps trying to rejoin
    const w = worker
    await until(() => /lost the hub at .* \(hub-closed\); rejoining/.test(w.stderr), "the worker lost its hub")
    expect(w.running).toBe(true)
  } finally {
    await worker?.stop()
    await hub.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Waits until the stopping hub refuses a new request; what it answered. */
async function refusal(url: string) {
  let refused: { status: number; connection: string | null; body: unknown } | string = ""
  await until(async () => {
    refused = await fetch(`${url}/items/1`).then(
      async (r) => ({
        status: r.status,
        connection: r.headers.get("connection"),
        body: await r.json().catch(() => null),
      }),
      (e: Error) => e.name,
    )
    return typeof refused === "string" || refused.status !== 200
  }, "the hub refuses new requests")
  return refused
}

describe.each(PEER_RUNTIMES)("a worker under %s", (runtime) => {
  test.skipIf(peerSkip(runtime) !== null)(
    "SIGTERM to slotbus hub: what an outside worker holds is answered, new requests get 503, the hub exits 0",
    () =>
      withHub(runtime, async ({ hub, worker, url, release }) => {
        const answers = Array.from({ length: 8 }, (_, i) =>
          fetch(`${url}/hold`, { method: "POST", body: String(i) }).then(
            async (r) => `${r.status} ${await r.text()}`,
            (e: Error) => `${e.name}: ${e.message}`,
          ),
        )
        await until(() => worker.lines.filter((l) => /^held \d+$/.test(l)).length === 8, "the worker holds 8 requests")
        hub.signal("SIGTERM")
        // the hub stopped taking requests (before the fix it closed at once: its port refused, the 8 cut off)
        const refused = await refusal(url)
        writeFileSync(release, "")
        expect(await Promise.all(answers)).toEqual(Array.from({ length: 8 }, (_, i) => `201 ${i}`))
        expect(refused).toMatchObject({ status: 503, connection: "close", body: { error: "unavailable" } })
        expect(await hub.exited).toBe(0)
      }),
    60_000,
  )

  test.skipIf(peerSkip(runtime) !== null)(
    "SIGTERM to slotbus hub while a client uploads a request's body: the request is answered once its body is in",
    () =>
      withHub(runtime, async ({ hub, url }) => {
        const half = "a".repeat(500)
        const upload = await halfUpload(url, "/echo", half)
        hub.signal("SIGTERM")
        expect(await refusal(url)).toMatchObject({ status: 503 })
        // before: the hub closed once no worker ran anything, cutting the upload off (or answered 503 after it)
        const answer = await upload.finish()
        expect(answer).toStartWith("HTTP/1.1 200")
        expect(answer.endsWith(half + half)).toBe(true)
        expect(await hub.exited).toBe(0)
      }),
    60_000,
  )
})
