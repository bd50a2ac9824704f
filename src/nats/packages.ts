// The NATS client packages are optional peers of slotbus: each is imported when a feature that needs it is
// opened, and a missing one is a MissingPackageError that names the \`bun add\` to run (not the runtime's
// "Cannot find package" from inside slotbus's files, at the first message).
import { MissingPackageError } from "../core/index.ts"

async function load<T>(name: string, feature: string, get: () => Promise<T>): Promise<T> {
  try {
    return await get()
  } catch (e) {
    if (!/cannot find (package|module)/i.test(String(e)) || !String(e).includes(name)) throw e
    throw new MissingPackageError(
      `${feature} needs the package ${name}, which this app has not installed: bun add ${name}`,
      name,
      {
        cause: e,
      },
    )
  }
}

/** The NATS client: any `nats` option. */
export const natsClient = () =>
  load("@nats-io/transport-node", "slotbus across hosts (a nats option)", () => import("@nats-io/transport-node"))
/** JetStream: durable topics. */
export const jetStreamClient = () =>
  load("@nats-io/jetstream", "a durable topic (JetStream)", () => import("@nats-io/jetstream"))
/** JetStream KV: contests across hosts. */
export const kvClient = () => load("@nats-io/kv", "a contest across hosts (JetStream KV)", () => import("@nats-io/kv"))
