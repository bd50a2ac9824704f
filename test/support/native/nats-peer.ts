// A NATS client for the tests of test/support/hosts.ts, usually run on host B (hosts.spawnOnB). Usage:
//   bun test/support/native/nats-peer.ts pub <servers> <subject> <text>
//       publishes <text> on <subject> every 50 ms until a message arrives on <subject>.ack (interest crosses
//       the cluster's route a moment after a subscribe, so the first ones may reach nobody); prints "acked", exits 0
//   bun test/support/native/nats-peer.ts responder <servers> <subject>
//       answers each request on <subject> with "<body>@<server name it is connected to>"; prints
//       "connected <server name>" once connected and "reconnected <server name>" after each reconnect; runs until killed
// <servers> is a comma-separated list of nats:// URLs, tried in that order (noRandomize).
import { connect } from "@nats-io/transport-node"

const [mode, servers, subject, text] = process.argv.slice(2)
if (!mode || !servers || !subject) throw new Error("usage: nats-peer.ts pub|responder <servers> <subject> [text]")

const nc = await connect({
  servers: servers.split(","),
  noRandomize: true,
  reconnectTimeWait: 100,
  maxReconnectAttempts: -1,
})
const serverName = () => nc.info?.server_name ?? "?"

if (mode === "pub") {
  const acks = nc.subscribe(`${subject}.ack`, { max: 1 })
  await nc.flush()
  const timer = setInterval(() => nc.publish(subject, text ?? ""), 50)
  for await (const _ of acks) break
  clearInterval(timer)
  console.log("acked")
  await nc.close()
} else if (mode === "responder") {
  nc.subscribe(subject, {
    callback: (_err, m) => {
      m.respond(`${m.string()}@${serverName()}`)
    },
  })
  await nc.flush()
  console.log(`connected ${serverName()}`)
  for await (const s of nc.status()) if (s.type === "reconnect") console.log(`reconnected ${serverName()}`)
} else {
  throw new Error(`unknown mode ${mode}`)
}
