// examples/app as a user runs it: the server process with its two supervised workers, over real HTTP, a kill -9
// of the worker holding the leased job, a request too large, then SIGTERM; nothing may be left behind.
import { afterAll, expect, test } from "bun:test"
import { join } from "node:path"
import { REPO, spawn, stopAll, until } from "../support/helpers.ts"

afterAll(stopAll)

test("the example app serves, invalidates over the topic, hands the leased job over after a kill -9, answers through MCP, and stops on SIGTERM", async () => {
  const server = spawn([process.execPath, join(REPO, "examples", "app", "server.ts")], {
    env: { ...process.env, PORT: "0", APP_NAME: `example-${process.pid}` },
  })
  const url = (await server.waitLine(/^example app listening on (\S+)$/, 60_000))[1]!.replace(/\/$/, "")
  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(url + path, init)
    expect(res.status).toBe(200)
    return res
  }
  expect(await (await get("/square/12")).text()).toBe("144")
  const cached = async () => ((await (await get("/cache/answer")).json()) as { fresh: boolean }).fresh === false

  expect(await cached()).toBe(false) // computed first
  await until(cached, "a cached answer", 10_000)
  // both workers may hold it: one publish must reach each of them
  const workers = (await (await get("/workers")).json()) as { pid: number }[]
  expect(workers.length).toBe(2)
  for (let i = 0; i < 4; i++) await get("/cache/answer")
  await get("/invalidate/answer", { method: "POST" })
  await until(async () => !(await cached()), "recomputed after invalidation", 10_000)

  const run = async () => (await (await get("/job")).json()) as { pid: number; runs: number; token: string } | null
  await until(async () => (await run()) !== null, "the job's first run", 10_000)
  const holder = (await run())!
  expect(workers.map((w) => w.pid)).toContain(holder.pid)
  process.kill(holder.pid, "SIGKILL")
  await until(
    async () => ((await run())?.pid ?? holder.pid) !== holder.pid,
    "the other worker takes the job over",
    20_000,
  )
  const next = (await run())!
  expect(BigInt(next.token)).toBeGreaterThan(BigInt(holder.token)) // fencing: a newer token

  expect(await (await get("/echo?message=hi")).json()).toEqual({ content: [{ type: "text", text: "Echo: hi" }] })

  // a request bus.fetch refuses gets its own status, JSON (Bun.serve's error: failureResponse), not Bun's 500 page
  const big = await fetch(`${url}/square/2`, { method: "POST", body: new Uint8Array(64 * 1024 * 1024 + 1) })
  expect([big.status, ((await big.json()) as { error: string }).error]).toEqual([413, "too-large"])

  server.signal("SIGTERM")
  expect(await server.exited).toBe(0)
}, 120_000)
