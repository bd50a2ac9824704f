// closeGracefully: a front's SIGTERM that drops no request, for a Bun.serve server and a node:http one alike. Both
// stop listening and let requests in flight finish, but neither tells a keep-alive client to go: Bun closes the
// connection after the answer (the client's next request, already sent, is lost) and Node keeps it open until its
// keepAliveTimeout (5 s), its client's next requests still served. So once closing, every answer says
// `Connection: close` (a node:http server's all, its app's own routes too; a Bun server's those of the bus), and the
// pool and the bus stop only once no connection is left.
import { checkNumber, checkOptions, type LongTimer, longTimeout, optionNames } from "../../kit/index.ts"
import type { ServerResponse } from "node:http"
import { arrived, closeWhenLast, closing, quirks } from "../../runtime/index.ts"
import { SlotBus } from "./bus.ts"
import { leaving } from "./fetch-body.ts"

/** A Bun.serve server, as closeGracefully uses it. */
interface BunServer {
  stop(closeActiveConnections?: boolean): Promise<void> | void
  readonly pendingRequests: number
}

/** A node:http (or node:https) server, as closeGracefully uses it. */
interface NodeServer {
  close(callback?: (err?: Error) => void): unknown
  closeIdleConnections(): void
  closeAllConnections(): void
  on(event: "request", listener: (req: unknown, res: { once(event: "close", f: () => void): unknown }) => void): unknown
  prependListener(event: "request", listener: (req: unknown, res: ServerResponse) => void): unknown
  off(
    event: "request",
    listener: (req: unknown, res: { once(event: "close", f: () => void): unknown }) => void,
  ): unknown
}

export interface CloseGracefullyOptions {
  /** The pool feeding the bus (superviseWorkers'): stopped once no HTTP request is left, its workers drained. */
  pool?: { stop(): Promise<unknown> }
  /** The bus: from the start its fetch answers say `Connection: close`; closed last. */
  bus?: SlotBus
  /** How long the server's connections may take to finish before they are cut; default 10 000 ms. */
  timeoutMs?: number
}

/** Longest a Bun server waits for its kept-alive clients' next request before it stops listening. */
const LINGER_MS = 1000

const OPTIONS = optionNames<CloseGracefullyOptions>({ pool: true, bus: true, timeoutMs: true })

const isBunServer = (s: object): s is BunServer => typeof (s as BunServer).stop === "function"
const isNodeServer = (s: object): s is NodeServer =>
  typeof (s as NodeServer).close === "function" && typeof (s as NodeServer).prependListener === "function"

/**
 * Closes a front without dropping a request, for SIGTERM: answers from now on say `Connection: close` (so a
 * keep-alive client leaves instead of sending on into a closed socket), the server stops listening, requests in
 * flight finish, idle connections close; then `pool.stop()` and `bus.close()`. Connections still open after
 * `timeoutMs` are cut. Resolves once all is closed: `process.exit(0)` after it ends what else keeps the process up.
 */
export async function closeGracefully(server: BunServer | NodeServer, options: CloseGracefullyOptions = {}) {
  const o = checkOptions(options, OPTIONS, "closeGracefully")
  const timeoutMs = checkNumber(o.timeoutMs, { what: "timeoutMs", where: "closeGracefully", dflt: 10_000 })
  if (typeof server !== "object" || server === null || !(isBunServer(server) || isNodeServer(server)))
    throw new TypeError(
      "closeGracefully takes the front's server: Bun's (from serve()) or node:http's (from createServer())",
    )
  if (o.bus !== undefined && !(o.bus instanceof SlotBus)) throw new TypeError("closeGracefully: bus must be a SlotBus")
  if (o.pool !== undefined && typeof o.pool?.stop !== "function")
    throw new TypeError("closeGracefully: pool must be what superviseWorkers() made")
  if (o.bus) leaving.add(o.bus)
  let timer: LongTimer | undefined
  // past 2^31−1 ms a plain setTimeout fires at once, cutting every request in flight: a huge timeoutMs waits
  const late = new Promise<"late">((r) => (timer = longTimeout(() => r("late"), timeoutMs)))
  const lingerEnd = Date.now() + Math.min(LINGER_MS, timeoutMs)
  try {
    if (!isBunServer(server)) {
      closing.add(server)
      // the app's own answers too (an Express or Fastify route): set before its listener writes the head
      server.prependListener("request", sayClose)
      if (quirks.httpCloseDropsIdle) await lingerForNextRequests(server, lingerEnd)
      // close() closes the idle connections at once, resetting one whose next request is not read yet (idle to
      // node:http until parsed): they are left open, to have that request answered with Connection: close
      const closeIdle = server.closeIdleConnections
      server.closeIdleConnections = () => {}
      const closed = new Promise<void>((r) => server.close(() => r()))
      server.closeIdleConnections = closeIdle
      // then what stays idle is closed, after a turn of the event loop (setImmediate: its reads are parsed first)
      const sweep = setInterval(() => setImmediate(() => server.closeIdleConnections()), 100)
      try {
        if ((await Promise.race([closed, late])) === "late") server.closeAllConnections()
        await closed
      } finally {
        clearInterval(sweep)
      }
    } else {
      // Bun's stop() resets a request that comes on a kept-alive connection after it: first the connections whose
      // answer went out before now send their next request (answered with Connection: close), then it stops
      await quiet(() => server.pendingRequests, lingerEnd)
      if ((await Promise.race([server.stop(), late])) === "late") await server.stop(true)
    }
  } finally {
    timer?.clear()
  }
  await o.pool?.stop()
  await o.bus?.close()
}

/**
 * A node:http answer from now on says `Connection: close`, and its connection closes after it, unless its client
 * pipelined another request after it (that one's answer says it): decided as its head is written.
 */
const sayClose = (_req: unknown, res: ServerResponse) => {
  arrived(res)
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: Parameters<typeof writeHead>) {
    closeWhenLast(this)
    return writeHead.apply(this, args)
  } as typeof writeHead
}

/** Waits until `inFlight()` was 0 twice 20 ms apart, or until `end` (Date.now()). */
async function quiet(inFlight: () => number, end: number) {
  for (let idle = 0; idle < 2 && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 20))
    idle = inFlight() === 0 ? idle + 1 : 0
  }
}

/**
 * node:http under Bun closes kept-alive idle connections in close() itself, as Bun.serve's stop() does: the same
 * wait for their next request first, counted from now on (its getConnections() says 0).
 */
async function lingerForNextRequests(server: NodeServer, end: number) {
  let inFlight = 0
  const count = (_req: unknown, res: { once(event: "close", f: () => void): unknown }) => {
    inFlight++
    res.once("close", () => inFlight--)
  }
  server.on("request", count)
  try {
    await quiet(() => inFlight, end)
  } finally {
    server.off("request", count)
  }
}
