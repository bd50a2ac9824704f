// How each transport of transports.ts is made from its server's address: the part of that table the suites' peer
// processes (test/support/conformance) import. Nothing here imports bun:test, so the peers also run under Node 26
// (issue 67: the suites run their peer in Node as well as Bun).
import type { RemoteTransport } from "../../src/core/internal.ts"
import type { TopicRemote } from "../../src/events/internal.ts"
import type { LeaseRemote } from "../../src/leases/internal.ts"
import { nats } from "../../src/nats/index.ts"

/** Every port a transport implements: workers (core/wire/remote.ts), topics (events/bridge.ts), leases (leases/table.ts). */
export type AnyRemote = RemoteTransport & TopicRemote & LeaseRemote

/** Each transport's name and how to make it from its server's address. */
export const REMOTES: Record<string, (address: string) => AnyRemote> = {
  nats: (address) => nats(address),
}

/** The transport `name`, reaching its server at `address`. */
export function remoteNamed(name: string, address: string): AnyRemote {
  const make = REMOTES[name]
  if (!make) throw new Error(`no transport "${name}" in test/conformance/remotes.ts`)
  return make(address)
}
