// Workers on other hosts over NATS (docs/PROTOCOL.md §10): loaded only for a bus or worker given a `nats` option.
// Leases across hosts on JetStream KV (§12): loaded only for a contest given a `nats` option.
import type { RemoteTransport } from "../core/index.ts"
import { serveHub } from "./hub.ts"
import { serveWorker } from "./worker.ts"

export const transport: RemoteTransport = { serveHub, serveWorker }
export { bucketOf, keyOf, marginFor, nextToken, openKvLeases } from "./kv-lease.ts"
export type { KvClaim, KvClaimOutcome, KvHolder, KvLeaseOptions, KvLeaseTable } from "./kv-lease.ts"
