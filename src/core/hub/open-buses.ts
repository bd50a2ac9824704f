// The buses this process listens on, by name, shared by every copy of this module a hot reload may load: a second
// listen of a name gets the open bus back under `bun --hot` (same options, same transport), else NameInUseError.
import { NameInUseError } from "../../errors.ts"
import type { ListenOptions } from "./options.ts"
import type { RemoteTransport } from "../wire/remote.ts"

/** What this registry needs of a bus (bus.ts imports this file, so not the class itself). */
interface Listening {
  readonly name: string
  readonly closing: Promise<void> | null
}

type OpenBus = { bus: Listening; options: string; remote: RemoteTransport | undefined }
const OPEN_BUSES: Map<string, OpenBus> = ((globalThis as Record<symbol, unknown>)[Symbol.for("slotbus.openBuses")] ??=
  new Map()) as Map<string, OpenBus>

/**
 * The options that shape a bus but its transport, in a canonical form: a hot reload may reuse the bus only if
 * they are equal and the transports are the same (sameTransport).
 */
function optionsKey(opts: ListenOptions): string {
  const { hot: _, remote: __, ...rest } = opts
  return JSON.stringify(
    Object.keys(rest)
      .sort()
      .map((k) => [k, rest[k as keyof typeof rest]]),
  )
}

/** Two transports reach the same servers with the same credentials (one object is always the same as itself). */
function sameTransport(a: RemoteTransport | undefined, b: RemoteTransport | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.sameAs?.(b) === true)
}

/** The bus this process already listens on as `name`, for a hot reload that may have it back; null when none. */
export function openBus<B extends Listening>(name: string, opts: ListenOptions): B | null {
  const mine = OPEN_BUSES.get(name)
  if (!mine || mine.bus.closing) return null
  const hot = opts.hot ?? process.execArgv.includes("--hot")
  if (!hot)
    throw new NameInUseError(
      `this process already listens as "${name}" (a bus it did not close); reuse that bus, close it first, or pass { hot: true } to get it back`,
    )
  if (mine.options !== optionsKey(opts))
    throw new NameInUseError(
      `this process already listens as "${name}" with other options; a hot reload cannot change them: restart the process`,
    )
  if (!sameTransport(mine.remote, opts.remote))
    throw new NameInUseError(
      `this process already listens as "${name}" over another remote transport (other servers, credentials or connection); a hot reload cannot change it: restart the process`,
    )
  return mine.bus as B
}

export const openBuses = {
  add(bus: Listening, opts: ListenOptions) {
    OPEN_BUSES.set(bus.name, { bus, options: optionsKey(opts), remote: opts.remote })
  },
  remove(bus: Listening) {
    if (OPEN_BUSES.get(bus.name)?.bus === bus) OPEN_BUSES.delete(bus.name)
  },
}
