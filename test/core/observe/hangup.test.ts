// instrument() around a node:http listener (serve-span.ts) when the client hangs up before anything was written: the
// sample is counted with status 499 (nginx's "client closed request"), not the 200 a ServerResponse starts with,
// under Bun's node:http and under Node's.
import { afterAll, expect, test } from "bun:test"
import { connect } from "node:net"
import { sample } from "../../support/status/prometheus.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"
import { until } from "../../support/helpers.ts"

afterAll(() => removeNodeBuilds())

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `a client that hangs up before any answer is a 499 in http_server_request_duration_seconds, not a 200 (${runtime})`,
    async () => {
      const front = await peerChild(runtime, "runtime/hangup-front.ts", [])
      try {
        const [, port] = await front.waitLine(/^port (\d+)$/, 30_000)
        const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
        const series = (status: number) =>
          `http_server_request_duration_seconds_count{http_request_method="GET",http_route="/hold/:id",http_response_status_code="${status}"}`
        for (let i = 0; i < 3; i++) {
          const socket = connect(Number(port), "127.0.0.1")
          await new Promise<void>((r) => socket.once("connect", () => r()))
          socket.write(`GET /hold/${i} HTTP/1.1\r\nhost: x\r\n\r\n`)
          await Bun.sleep(50) // the listener has it
          socket.destroy()
        }
        await until(async () => sample(await metrics(), series(499)) === 3, "three hang-ups counted", 10_000)
        expect(sample(await metrics(), series(200))).toBeUndefined()
      } finally {
        await front.kill()
      }
    },
    60_000,
  )
