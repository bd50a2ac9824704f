// A holder of a cluster contest's subject, for the LeaseRemote conformance suite (test/conformance/lease-remote.test.ts):
//   conformance-lease.ts <transport> <address> <contest> <label> <ttlMs>
// Claims { kind: 9, label } (waiting), prints "claimed <token>", then renews every ttlMs / 4 until killed; a renewal
// that fails prints "lost <error name>" and exits 1. The claim carries $TRACEPARENT (and $TRACESTATE) if set. Runs
// under Bun and Node (test/support/runtime/peers.ts).
import { setTimeout as sleep } from "node:timers/promises"
import { Contest } from "../../../src/leases/index.ts"
import { remoteNamed } from "../../conformance/remotes.ts"

const [transport, address, name, label, ttl] = process.argv.slice(2)
if (!ttl) throw new Error("usage: conformance-lease.ts <transport> <address> <contest> <label> <ttlMs>")
const contest = await Contest.open(name!, { remote: remoteNamed(transport!, address!) })
const { TRACEPARENT: traceparent, TRACESTATE: tracestate } = process.env
const lease = await contest.claim(
  { kind: 9, label: label! },
  {
    owner: `holder-${process.pid}`,
    ttlMs: Number(ttl),
    ...(traceparent && { traceparent }),
    ...(tracestate && { tracestate }),
  },
)
console.log(`claimed ${lease.token}`)
for (;;) {
  await sleep(Number(ttl) / 4)
  try {
    await lease.renew(Number(ttl))
  } catch (e) {
    console.log(`lost ${(e as Error).name}`)
    process.exit(1)
  }
}
