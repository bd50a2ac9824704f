// What a SlotWorker is made with and ends with: its handler's types, connect's and expose's options (one list, each
// adding its own), close's, and how a worker closed.
import type { IdleStrategy } from "../wire/idle-strategy.ts"
import type { RemoteTransport } from "../wire/remote.ts"
import { checkNumber, checkOptions, optionNames } from "../../kit/index.ts"
import type { SlotRequest } from "./request.ts"
import type { SlotReply } from "./answer.ts"

export type SlotHandler = (req: SlotRequest) => SlotReply | PromiseLike<SlotReply>
/** A handler in `{ fetch: true }` mode: a Web Request in, a Response (or any SlotReply) out. */
export type FetchHandler = (req: Request) => SlotReply | PromiseLike<SlotReply>

export interface ConnectOptions {
  /** How the worker waits for requests. Default "adaptive". */
  idle?: IdleStrategy
  /** Keep retrying to find the hub for this long before rejecting with HubNotFoundError. Default 0. */
  waitForHubMs?: number
  /** After the hub goes away, wait for a new one under the same name and rejoin. Default false. */
  reconnect?: boolean
  /** uid the hub must run as. Default: this process's uid. */
  hubUid?: number
  /** How long one attempt waits for the hub's hello; a reconnecting worker then tries again. Default 5000. */
  helloTimeoutMs?: number
  /** Called each time the worker (re)joins a hub. */
  onConnect?: (hubPid: number) => void
  /** Called each time it loses one. */
  onDisconnect?: (reason: string) => void
  /**
   * The handler takes a Web `Request` (URL `http://<name><path>`, body copied, `signal` as `req.signal`) instead
   * of a SlotRequest. Raw calls arrive as `POST /`. Default false.
   */
  fetch?: boolean
  /**
   * Serve the hub from another host through a transport passed in: `remote: nats(url)` (`import { nats } from
   * "slotbus/nats"`, docs/PROTOCOL.md §10). The handler is the same.
   */
  remote?: RemoteTransport
  /** With `remote`: requests this worker takes at once. Default 32. */
  slots?: number
  /**
   * With `remote`: the host name hubs show for this worker (stats, errors, the status page), 1-255 characters.
   * Default: the machine's hostname (containers and VMs often share one).
   */
  host?: string
  /**
   * With `remote`: how often the worker announces itself; a hub counts it gone after 4× this, or after the hub's
   * peerTimeoutMs if that is longer. Default 500.
   */
  heartbeatMs?: number
  /**
   * With `remote`: close (reason "hub-gone") once every hub this worker heard from went silent, as a worker on one
   * host closes with its hub. Off by default: a worker on another host outlives its hubs (and a cut network) and serves
   * whichever hub announces itself next. `hubWorker` turns it on, so it registers again with the hub that took over.
   */
  closeWhenHubsGone?: boolean
  /**
   * End the process when the worker closes but by close(), and 2 s + its drain after the front that started it went
   * (docs/api.md, "A worker's lifetime"). Default: true for a pool's worker ($SLOTBUS_FRONT_PARENT), else false.
   */
  exitWithFront?: boolean
  /**
   * End the process (the error on stderr, exit code 1) on an uncaught error or an unhandled rejection, whatever its
   * module awaits, as Node does (docs/api.md, "A worker's lifetime"). Default true; false, from any worker of the
   * process, keeps it running, and so does a `process.on("uncaughtException" | "unhandledRejection")` of the app's.
   */
  exitOnUncaught?: boolean
}

/** SlotWorker.expose's options: connect's (but `fetch`), and a handler for the requests that are not RPC calls. */
export interface ExposeOptions extends Omit<ConnectOptions, "fetch"> {
  /** Serves the requests that are not RPC calls (`bus.request`, `bus.call`, `bus.fetch`); without it they fail. */
  handler?: SlotHandler
}

// connect's and expose's options: one list, each adding its own
const SERVE_OPTIONS = {
  remote: true,
  slots: true,
  host: true,
  heartbeatMs: true,
  closeWhenHubsGone: true,
  exitWithFront: true,
  exitOnUncaught: true,
  idle: true,
  waitForHubMs: true,
  reconnect: true,
  hubUid: true,
  helloTimeoutMs: true,
  onConnect: true,
  onDisconnect: true,
} as const
export const CONNECT_OPTIONS = optionNames<ConnectOptions>({ ...SERVE_OPTIONS, fetch: true })
export const EXPOSE_OPTIONS = optionNames<ExposeOptions>({ ...SERVE_OPTIONS, handler: true })
const CLOSE_OPTIONS = optionNames<{ timeoutMs?: number }>({ timeoutMs: true })

/** A close()'s options checked (`where` names the call): how long running handlers may finish, default 5 000 ms. */
export function closeTimeoutMs(opts: { timeoutMs?: number }, where: string): number {
  checkOptions(opts, CLOSE_OPTIONS, where)
  return checkNumber(opts.timeoutMs, { what: `${where}: timeoutMs`, dflt: 5000 })
}

export interface WorkerClosed {
  /** closed: by close(); hub-closed: the hub closed the bus; hub-gone: the hub died; protocol-error: it broke the protocol. */
  reason: "closed" | "hub-closed" | "hub-gone" | "protocol-error"
  error?: Error
}
