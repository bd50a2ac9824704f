// The NATS client packages are optional peers of slotbus: each is imported when a feature that needs it is
// opened, and a missing one is a MissingPackageError that names the install command to run (not the runtime's
// "Cannot find package" from inside slotbus's files, at the first message).
import { MissingPackageError } from "../core/index.ts"
import { addPackage } from "../runtime/index.ts"

async function load<T>(name: string, feature: string, get: () => Promise<T>): Promise<T> {
  try {
    return await get()
  } catch (e) {
    if (!/cannot find (package|module)/i.test(String(e)) || !String(e).includes(name)) throw e
    throw MissingPackageError.of(feature, name, addPackage, e)
  }
}

/** The NATS client: any `nats` option. */
// Each typed by its module, not inferred: the inferred type names @nats-io/nkeys by a path declarations cannot print
// from a worktree whose node_modules is a link (TS2742 in build:types).
export const natsClient = (): Promise<typeof import("@nats-io/transport-node")> =>
  load("@nats-io/transport-node", "slotbus across hosts (a nats option)", () => import("@nats-io/transport-node"))
/** JetStream: durable topics. */
export const jetStreamClient = (): Promise<typeof import("@nats-io/jetstream")> =>
  load("@nats-io/jetstream", "a durable topic (JetStream)", () => import("@nats-io/jetstream"))
/** JetStream KV: contests across hosts. */
export const kvClient = (): Promise<typeof import("@nats-io/kv")> =>
  load("@nats-io/kv", "a contest across hosts (JetStream KV)", () => import("@nats-io/kv"))
