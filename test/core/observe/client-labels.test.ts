// What a front's clients make of its samples. instrument() around Bun.serve's fetch when its bus.fetch rejects
// (serve-span.ts): the status is the one the client got from `error: failureResponse` (504 for a timeout, 502 for a
// worker killed mid-request), and 499 for a client that hung up, not 500 for every one, so an alert on 504s sees
// them. And the bus's route labels (bus-metrics.ts): a client's methods of its own are one `_OTHER`, not a label
// each filling `metricsRoutes` until the app's own routes read `other`; and `metricsRoutes` counts routes, not
// route and method pairs, so a client sending every method to some routes of a front (Bun.serve, and node:http
// under Node) leaves the app's other routes their own series. And the server histogram's statuses (http-server.ts): a
// front passing on whatever status its upstream answers keeps each route's first 16, the rest one `other`, not a
// series per status (400 statuses on one route made its /metrics 8.2 MB).
import { afterAll, describe, expect, test } from "bun:test"
import { connect } from "node:net"
import { failureResponse, instrument, SlotBus } from "../../../src/index.ts"
import { metricsText } from "../../../src/status/index.ts"
import { busName, spawnWorker, stopAll, until } from "../../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"
import { sample } from "../../support/status/prometheus.ts"

afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
})

test("a failed bus.fetch is counted with the status failureResponse answered (504, 502), a hang-up with 499", async () => {
  // its timeout far enough from the kill below that a loaded machine does not turn the 502 into a 504 (at 1000 ms a
  // CI run under load once did: the request reached the worker late in that second)
  const bus = await SlotBus.listen(busName("serve-failed"), { timeoutMs: 3000 })
  const base = `/r${crypto.randomUUID().slice(0, 8)}` // the server histogram is the process's: a route of this run's
  const server = Bun.serve({
    port: 0,
    routes: instrument({ [`${base}/:what`]: (req: Request) => bus.fetch(req) }),
    error: failureResponse,
  })
  try {
    let worker = await spawnWorker(bus.name)
    await bus.waitForWorkers(1)
    const series = async (status: number) =>
      sample(
        await metricsText([bus]),
        `http_server_request_duration_seconds_count{http_request_method="GET",http_route="${base}/:what",http_response_status_code="${status}"}`,
      )
    const get = (delayMs: number) =>
      fetch(`${server.url}${base.slice(1)}/x`, { headers: { "x-delay-ms": String(delayMs) } })

    expect((await get(4000)).status).toBe(504) // past the bus's timeoutMs
    expect(await series(504)).toBe(1)

    const held = get(10_000)
    await until(() => bus.stats().inFlight > 0, "the request is at the worker")
    await worker.kill("SIGKILL")
    expect((await held).status).toBe(502)
    expect(await series(502)).toBe(1)

    worker = await spawnWorker(bus.name)
    await bus.waitForWorkers(1)
    const socket = connect(server.port!, "127.0.0.1")
    await new Promise<void>((r) => socket.once("connect", () => r()))
    socket.write(`GET ${base}/x HTTP/1.1\r\nhost: x\r\nx-delay-ms: 5000\r\n\r\n`)
    await until(() => bus.stats().inFlight > 0, "the hung-up request is at the worker")
    socket.destroy()
    await until(async () => (await series(499)) === 1, "the hang-up counted as 499")
    expect(await series(500)).toBeUndefined()
  } finally {
    server.stop(true)
    await bus.close({ drain: false })
  }
})

test("methods a client makes up are one _OTHER route label; the app's routes keep theirs", async () => {
  const bus = await SlotBus.listen(busName("client-methods"))
  try {
    await spawnWorker(bus.name)
    await bus.waitForWorkers(1)
    // methods Bun's Request and parser keep as they are (it makes GET of one it does not know)
    const methods =
      "PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK SEARCH REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PURGE LINK UNLINK BIND REBIND UNBIND ACL QUERY MKCALENDAR SOURCE"
    for (const method of methods.split(" ")) {
      const res = await bus.fetch(new Request("http://front/w/1", { method }), { route: "/w/:id" })
      await res.arrayBuffer()
    }
    await (
      await bus.fetch(new Request("http://front/w/2", { method: "POST", body: "x" }), { route: "/w/:id" })
    ).arrayBuffer()
    const routes = [
      ...(await metricsText([bus])).matchAll(
        /^slotbus_route_request_duration_seconds_count\{[^}]*route="([^"]*)"[^}]*\} (\d+)$/gm,
      ),
    ].map((m) => [m[1], Number(m[2])])
    expect(routes).toEqual([
      ["_OTHER /w/:id", 26],
      ["POST /w/:id", 1],
    ])
  } finally {
    await bus.close({ drain: false })
  }
})

describe.each(PEER_RUNTIMES)("a %s front", (runtime) => {
  test.skipIf(peerSkip(runtime) !== null)(
    "a client sending every method to 8 of its routes leaves its 9th route its own series (metricsRoutes 64)",
    async () => {
      const name = busName("route-methods")
      const front = await peerChild(runtime, "core/routes-front.ts", [name])
      try {
        const [, base] = await front.waitLine(/^ready (\S+)$/, 30_000)
        await spawnWorker(name)
        const methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "PROPFIND"]
        for (let i = 0; i < 8; i++)
          for (const method of methods) {
            const res = await fetch(`${base}/b${i}/1`, { method })
            expect([method, res.status]).toEqual([method, 200])
            await res.arrayBuffer()
          }
        const res = await fetch(`${base}/b8/1`) // the app's own request, after the client's
        expect(res.status).toBe(200)
        await res.arrayBuffer()
        const text = await (await fetch(`${base}/metrics`)).text()
        const count = (route: string) =>
          sample(text, `slotbus_route_request_duration_seconds_count{bus="${name}",route="${route}"}`)
        expect(count("GET /b8/:id")).toBe(1)
        expect(count("other")).toBeUndefined()
        // each route keeps every method it was sent, under the label it had: PROPFIND as _OTHER
        const labels = methods.map((m) => (m === "PROPFIND" ? "_OTHER" : m))
        for (let i = 0; i < 8; i++) expect(labels.map((m) => count(`${m} /b${i}/:id`))).toEqual(Array(8).fill(1))
      } finally {
        front.signal("SIGTERM")
        await front.exited
      }
    },
    60_000,
  )
})

describe.each(PEER_RUNTIMES)("a %s front in instrument()", (runtime) => {
  test.skipIf(peerSkip(runtime) !== null)(
    "answering 400 statuses on one route keeps its first 16 and one `other`; its other routes keep theirs",
    async () => {
      const front = await peerChild(runtime, "core/status-front.ts", [])
      try {
        const [, base] = await front.waitLine(/^ready (\S+)$/, 30_000)
        const statuses = Array.from({ length: 400 }, (_, i) => 200 + i) // 200 to 599, in this order
        for (const method of ["GET", "POST"])
          for (const status of statuses) {
            const res = await fetch(`${base}/status/${status}`, { method })
            expect([method, res.status]).toEqual([method, status])
            await res.arrayBuffer()
          }
        const ok = await fetch(`${base}/ok`) // the app's own route, after the client's statuses
        expect(ok.status).toBe(200)
        await ok.arrayBuffer()
        const text = await (await fetch(`${base}/metrics`)).text()
        const series = [
          ...text.matchAll(
            /^http_server_request_duration_seconds_count\{http_request_method="(\w+)",http_route="\/status\/:code",http_response_status_code="(\w+)"\} (\d+)$/gm,
          ),
        ].map((m) => `${m[1]} ${m[2]} ${m[3]}`)
        const kept = statuses.slice(0, 16)
        expect(series.sort()).toEqual(
          ["GET", "POST"].flatMap((m) => [...kept.map((s) => `${m} ${s} 1`), `${m} other ${400 - 16}`]).sort(),
        )
        expect(
          sample(
            text,
            'http_server_request_duration_seconds_count{http_request_method="GET",http_route="/ok",http_response_status_code="200"}',
          ),
        ).toBe(1)
      } finally {
        front.signal("SIGTERM")
        await front.exited
      }
    },
    60_000,
  )
})
