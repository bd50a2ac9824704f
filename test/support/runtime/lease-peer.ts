// A contender of a lease contest that runs under Bun (as it is) and Node 26 (built by test/support/runtime/node.ts),
// for the tests of one contest shared between the two runtimes (issue 67). Usage: lease-peer.js <contest>
// Prints "ready <pid>" once the contest is open. Each stdin line is a command on the subject { kind: 7, label }:
//   claim <label>     waits for it (woken by the holder's release or death), then prints "claimed <label> <token> <from>"
//   try <label>       prints "claimed <label> <token> <from>" or "held <label> <holder's pid> <holder's token>"
//   release <label>   releases this process's lease, prints "released <label> <true|false>"
//   close             closes the contest and exits 0
//   exit              exits 0 without closing it (process.exit); throw: an uncaught error at the top level
import { createInterface } from "node:readline"
import { Contest, type Lease } from "../../../src/leases/index.ts"

const name = process.argv[2]
if (!name) throw new Error("usage: lease-peer.js <contest>")

const runtime = process.versions.bun ? "bun" : "node" // its claims' owner: "<runtime>-<pid>"
const contest = await Contest.open(name)
const held = new Map<string, Lease>()
const claimed = (label: string, lease: Lease) => {
  held.set(label, lease)
  console.log(`claimed ${label} ${lease.token} ${lease.from}`)
}
console.log(`ready ${process.pid}`)
for await (const line of createInterface({ input: process.stdin })) {
  const [verb, label = ""] = line.split(" ")
  const subject = { kind: 7, label }
  if (verb === "claim")
    contest.claim(subject, { owner: `${runtime}-${process.pid}` }).then(
      (lease) => claimed(label, lease),
      (e: Error) => console.log(`failed ${label} ${e.name}`),
    )
  else if (verb === "try") {
    const r = contest.tryClaim(subject, { owner: `${runtime}-${process.pid}` })
    if (r.claimed) claimed(label, r.lease)
    else console.log(`held ${label} ${r.holder.pid} ${r.holder.token}`)
  } else if (verb === "release") console.log(`released ${label} ${held.get(label)?.release() ?? false}`)
  else if (verb === "close") break
  else if (verb === "exit") process.exit(0)
  else if (verb === "throw") throw new Error("thrown at the top level, the contest open")
}
contest.close()
process.exit(0)
