// A durable topic's bridge waits for the stream's answer to each message (docs/PROTOCOL.md §11.6). An answer sent
// to a connection that dropped never comes: once the connection is back, what still waits fails at once, so the
// bridge sends it again then rather than at the answer timeout (5 s for a bridge; 10 minutes here, longer than the
// test). Before, such a message waited out the whole timeout. Needs `nats-server` (apt-get install -y nats-server).
import { afterAll, afterEach, expect, test } from "bun:test"
import { connect, createInbox, headers, type NatsConnection } from "@nats-io/transport-node"
import { SharedConnection, type NatsUse } from "../../src/nats/shared.ts"
import { StreamAcks } from "../../src/nats/stream-acks.ts"
import { type Child, until } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the stream answer tests are skipped: ${skip}`)

let server: Child | undefined
const undo: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const f of undo.splice(0).reverse()) await f()
})
afterAll(async () => {
  await server?.kill()
})

/** A stand-in for the stream on `subject`: answers as JetStream does (a PubAck), or takes a message and says nothing. */
async function stream(url: string, subject: string, answer: (n: number) => boolean) {
  const nc: NatsConnection = await connect({ servers: url })
  const s = { nc, taken: 0 }
  nc.subscribe(subject, {
    callback: (_, m) => {
      s.taken++
      if (answer(s.taken)) m.respond(JSON.stringify({ stream: "S", seq: s.taken }))
    },
  })
  await nc.flush()
  return s
}

test.skipIf(skip !== null)(
  "a message whose answer went with the connection fails once the connection is back, not at the timeout",
  async () => {
    const started = await startNats()
    server = started.server
    const use: NatsUse = await new SharedConnection(started.url).use()
    undo.push(() => use.release())
    const acks = new StreamAcks(use, headers, createInbox(), 600_000)
    undo.push(async () => acks.close())
    const silent = await stream(started.url, "ev.a", (n) => n === 1) // the first answered, the second not
    undo.push(() => silent.nc.close().catch(() => {}))
    const settled: string[] = []
    acks.publish("ev.a", new Uint8Array([1]), "id-1", (ok) => settled.push(`1 ${ok}`))
    acks.publish("ev.a", new Uint8Array([2]), "id-2", (ok) => settled.push(`2 ${ok}`))
    await until(() => silent.taken === 2 && settled.length === 1, "both taken, the first answered", 10_000)
    expect(settled).toEqual(["1 true"])

    await server.kill() // -9: the answer to message 2 can no longer come
    server = (await startNats({ port: started.port })).server
    await until(() => settled.length === 2, "message 2 failed once the connection came back", 20_000)
    expect(settled).toEqual(["1 true", "2 false"])

    // and the connection that came back carries answers as before
    const again = await stream(started.url, "ev.b", () => true)
    undo.push(() => again.nc.close())
    acks.publish("ev.b", new Uint8Array([3]), "id-3", (ok) => settled.push(`3 ${ok}`))
    await until(() => settled.length === 3, "message 3's answer", 10_000)
    expect(settled).toEqual(["1 true", "2 false", "3 true"])
  },
  60_000,
)
