// A member of a cluster contest (Contest.open with remote: nats(url)) that leaves it without close() when told, for the
// test of what that leaves on its host; runs under Bun as it is and under Node built. Usage: cluster-peer.ts <contest>
// <nats url>. Prints "claimed <token>" once it holds the subject { kind: 7, label: "a" }; a stdin line "exit" exits
// 0 (process.exit), "throw" throws at the top level (an uncaught error, exit code 1).
import { createInterface } from "node:readline"
import { Contest } from "../../../src/leases/index.ts"
import { nats } from "../../../src/nats/index.ts"

const [name, url] = process.argv.slice(2)
if (!name || !url) throw new Error("usage: cluster-peer.ts <contest> <nats url>")
const contest = await Contest.open(name, { remote: nats(url) })
const lease = await contest.claim({ kind: 7, label: "a" }, { ttlMs: 30_000, owner: `pid-${process.pid}` })
console.log(`claimed ${lease.token}`)
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "exit") process.exit(0)
  if (line === "throw") throw new Error("thrown at the top level, the contest open")
}
