// Socket listeners for external NDJSON clients (TCP, unix): one client of the bus per connection, so each
// client's ids and session stay its own. Nothing a client does grows the bus without bound: its unread input is
// paused past max_output_queue, a line past max_input_buffer or left incomplete too long cuts it off, the
// incomplete lines of all connections together are capped, and so is the number of connections. A TCP
// connection (any local user can reach a port) must first send the token from a 0600 file.
import { unlinkSync } from "node:fs"
import {
  checkNumber,
  checkOptions,
  claimSocketPath,
  longTimeout,
  madeBy,
  optionNames,
  type LongTimer,
} from "../kit/index.ts"
import { BusErrorCode, binding, ListenError } from "./errors.ts"
import { Inbound } from "./inbound.ts"
import { LineSplitter } from "./lines.ts"
import { AUTH_METHOD, defaultStdioTokenFile, newToken, removeTokenFile, sameToken, writeTokenFile } from "./token.ts"
import { listen, sleep, type Socket, type SocketListener } from "../runtime/index.ts"

export type ListenAddress = { kind: "tcp"; hostname: string; port: number } | { kind: "unix"; path: string }

/** What a listener needs from the bus, and no more (the bus depends on the listener, not the other way round). */
export interface ClientHost<C extends { close(): void }> {
  readonly limits: {
    readonly max_input_buffer: number
    readonly max_output_queue: number
    readonly drain_timeout_sec: number
  }
  /** A new client whose answers and unasked messages go to `deliver`. */
  attachClient(deliver: (message: object) => void): C
  /** One line from `client`; settles once the bus has taken it (routed, or answered with an error). */
  ingest(client: C, line: string): Promise<void> | void
  /** Resolves once every request `client` sent has been answered. */
  settled(client: C): Promise<void>
}

export interface ListenOptions {
  /** Connections at once, those still authenticating included (default 256); one more is refused. */
  maxClients?: number
  /** Bytes of incomplete lines held over all connections (default 16 MiB, at least 4 × max_input_buffer). */
  maxPartialBytes?: number
  /** A line must be complete this long after its first byte, or the client is cut off (default 30 000 ms). */
  lineTimeoutMs?: number
  /** TCP: the 0600 file the token is written to (default `slotbus-stdio-<port>.token` in `$XDG_RUNTIME_DIR`, the user's 0700 directory, else in the socket directory). */
  tokenFile?: string
}

/** "unix:/tmp/bus.sock", "tcp:127.0.0.1:9800", "tcp:9800" (loopback), "127.0.0.1:9800". */
export function parseAddress(spec: string): ListenAddress {
  if (spec.startsWith("unix:")) {
    const path = spec.slice(5)
    if (!path) throw new TypeError(`"${spec}": a unix address needs a path, like unix:/tmp/bus.sock`)
    return { kind: "unix", path }
  }
  const rest = spec.startsWith("tcp:") ? spec.slice(4) : spec
  const m = /^(?:\[?([^\]]*?)\]?:)?(\d{1,5})$/.exec(rest)
  const port = m ? Number(m[2]) : NaN
  if (!m || port > 65535)
    throw new TypeError(
      `"${spec}" is not an address: use unix:/path/to.sock or tcp:host:port (tcp:0 picks a free port)`,
    )
  return { kind: "tcp", hostname: m[1] || "127.0.0.1", port }
}

export function formatAddress(a: ListenAddress): string {
  return a.kind === "unix" ? `unix:${a.path}` : `tcp:${a.hostname}:${a.port}`
}

interface Conn<C> {
  /** draining: the bus is stopping; lines still in the socket are read and answered before it closes. */
  state: "authenticating" | "open" | "draining" | "closing"
  client: C | null
  inbound: Inbound | null
  splitter: LineSplitter
  /** The splitter's incomplete bytes as last counted into the listener's total. */
  partial: number
  lineTimer: LongTimer | null
  lineEnded: boolean
  /** TCP: the connection must authenticate before this fires (an idle unauthenticated one would hold a slot). */
  authTimer: LongTimer | null
  /** performance.now() when bytes were last read or reading resumed, and whether the client half-closed: when draining may end. */
  lastRead: number
  ended: boolean
  /** Bytes not written yet, in order: what this turn of the event loop wrote, and what the kernel did not take. */
  backlog: Uint8Array[]
  backlogBytes: number
  flushQueued: boolean
  /** The kernel took less than it was given: nothing more is written until it drains. */
  blocked: boolean
  /** Lines waiting (Inbound) until the client has read its answers down to half of max_output_queue. */
  roomWaiters: (() => void)[]
  endWhenFlushed: boolean
  /** Refused: its refusal was the last line it gets. */
  refused: boolean
  closeTimer: LongTimer | null
  /** Resolves when the socket has closed. */
  gone: PromiseWithResolvers<void>
}

const encoder = new TextEncoder()
/** An authentication line is short; a connection that has not authenticated may hold no more than this. */
const AUTH_LINE_MAX = 4096
/** How long closing connections get to take their last answers. */
const CLOSE_FLUSH_MS = 2000
/** A stopping bus reads a client's socket until it has been quiet this long (or half-closed): the lines still in it were sent before the close. */
const CLOSE_QUIET_MS = 50

/** `promise`, or undefined after `ms`, whichever comes first; no timer is left behind. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: LongTimer | undefined
  await Promise.race([promise, new Promise<void>((r) => (timer = longTimeout(r, ms)))])
  timer!.clear()
}

const FACTORY = Symbol("StdioListener.open")
const LISTEN_OPTIONS = optionNames<ListenOptions>({
  maxClients: true,
  maxPartialBytes: true,
  lineTimeoutMs: true,
  tokenFile: true,
})

export class StdioListener {
  private closed = false
  private readonly sockets = new Set<Socket<Conn<unknown>>>()
  private partialTotal = 0
  private server!: SocketListener<Conn<unknown>>
  private token: string | null = null
  /** TCP: the file clients read the token from (null for a unix socket). */
  tokenFile: string | null = null
  address!: ListenAddress

  private constructor(key: symbol) {
    madeBy(key, FACTORY, "StdioListener", "await bus.listen(address, options)")
  }

  /** How many clients are connected through this listener (those still authenticating included). */
  get clientCount(): number {
    return this.sockets.size
  }

  static async open<C extends { close(): void }>(
    host: ClientHost<C>,
    spec: string,
    options: ListenOptions = {},
  ): Promise<StdioListener> {
    checkOptions(options, LISTEN_OPTIONS, "stdio bus.listen")
    const address = parseAddress(spec)
    const { max_input_buffer: maxIn, max_output_queue: maxOut } = host.limits
    const where = "stdio bus.listen"
    const maxClients = checkNumber(options.maxClients, { what: "maxClients", where, min: 1, dflt: 256 })
    const maxPartial = checkNumber(options.maxPartialBytes, {
      what: "maxPartialBytes",
      where,
      min: 1,
      dflt: Math.max(16 * 1024 * 1024, 4 * maxIn),
    })
    const lineTimeoutMs = checkNumber(options.lineTimeoutMs, {
      what: "lineTimeoutMs",
      where,
      min: Number.MIN_VALUE,
      max: Infinity,
      integer: false,
      dflt: 30_000,
    })
    if (options.tokenFile !== undefined && (typeof options.tokenFile !== "string" || options.tokenFile === ""))
      throw new TypeError("listen(): tokenFile must be a path")
    const self = new StdioListener(FACTORY)
    type S = Socket<Conn<C>>

    // Messages written in one turn go out in one write(2): a unix socket's buffer holds a few hundred small
    // writes (each costs the kernel far more than its bytes), so a burst of answers written one by one filled it
    // and cut off a client that was reading them.
    const write = (socket: S, bytes: Uint8Array) => {
      const s = socket.data
      if (s.refused) return
      s.backlog.push(bytes)
      s.backlogBytes += bytes.length
      if (s.blocked && s.backlogBytes > maxOut) return void socket.terminate() // the kernel is full: these bytes wait
      if (s.flushQueued || s.blocked) return
      s.flushQueued = true
      queueMicrotask(() => flush(socket))
    }
    const flush = (socket: S) => {
      const s = socket.data
      s.flushQueued = false
      if (s.blocked || s.backlogBytes === 0) return
      const bytes = s.backlog.length === 1 ? s.backlog[0]! : Buffer.concat(s.backlog)
      const n = Math.max(socket.write(bytes), 0)
      s.backlog = n < bytes.length ? [bytes.subarray(n)] : []
      s.backlogBytes = bytes.length - n
      s.blocked = n < bytes.length
      if (s.backlogBytes > maxOut) return void socket.terminate() // a client that does not read its answers is dropped, not buffered for
      if (s.backlogBytes <= maxOut / 2) for (const r of s.roomWaiters.splice(0)) r()
      if (s.backlogBytes === 0 && s.endWhenFlushed) socket.shutdown()
    }
    /**
     * Half-closes once what was written has gone out, and closes when the client does (bounded): the client gets its
     * last answers. Closing outright lost them: a client whose connect had not completed saw it fail, its refusal
     * unread. What it still sends is read and dropped (a paused socket would not see the client close).
     */
    const finish = (socket: S) => {
      const s = socket.data
      s.state = "closing"
      stopLineTimer(s)
      socket.resume()
      s.closeTimer ??= longTimeout(() => socket.terminate(), CLOSE_FLUSH_MS)
      if (s.backlogBytes === 0) return void socket.shutdown()
      s.endWhenFlushed = true
    }
    /** The last line a refused client gets: `data.disconnected` tells it from an invalid request's answer. */
    const refuse = (socket: S, message: string) => {
      if (socket.data.state === "closing") return
      const error = { code: BusErrorCode.InvalidRequest, message, data: { disconnected: true } }
      write(socket, encoder.encode(`${JSON.stringify({ jsonrpc: "2.0", id: null, error })}\n`))
      socket.data.refused = true
      finish(socket)
    }
    const stopLineTimer = (s: Conn<C>) => {
      s.lineTimer?.clear()
      s.lineTimer = null
    }
    const attach = (socket: S) => {
      const s = socket.data
      s.state = "open"
      s.authTimer?.clear()
      s.client = host.attachClient((message) => write(socket, encoder.encode(JSON.stringify(message) + "\n")))
      // A client's next line waits while its answers pile up unread: a burst of them (all answered at once, as
      // when the bus stops) is paced to the client's reading instead of cutting it off.
      const room = () => new Promise<void>((r) => s.roomWaiters.push(r))
      s.inbound = new Inbound(
        (line) =>
          s.backlogBytes > maxOut / 2 ? room().then(() => host.ingest(s.client!, line)) : host.ingest(s.client!, line),
        maxOut,
        () => {
          s.lastRead = performance.now()
          socket.resume()
        },
      )
    }
    const authenticate = (socket: S, line: string) => {
      let msg: { method?: unknown; params?: { token?: unknown } } | null = null
      try {
        msg = JSON.parse(line)
      } catch {}
      if (msg && typeof msg === "object" && msg.method === AUTH_METHOD && sameToken(msg.params?.token, self.token!))
        return attach(socket)
      refuse(
        socket,
        `authentication failed: a TCP client's first line must be {"jsonrpc":"2.0","method":"${AUTH_METHOD}","params":{"token":"…"}} with the token from ${self.tokenFile}`,
      )
    }

    const handlers = {
      open(socket: S) {
        const s: Conn<C> = {
          state: "authenticating",
          client: null,
          inbound: null,
          partial: 0,
          lineTimer: null,
          lineEnded: false,
          lastRead: 0,
          ended: false,
          authTimer: null,
          backlog: [],
          backlogBytes: 0,
          flushQueued: false,
          blocked: false,
          roomWaiters: [],
          endWhenFlushed: false,
          refused: false,
          closeTimer: null,
          gone: Promise.withResolvers<void>(),
          splitter: new LineSplitter(maxIn, (line) => {
            s.lineEnded = true
            if (s.state === "open" || s.state === "draining") s.inbound!.push(line)
            else if (s.state === "authenticating") authenticate(socket, line)
          }),
        }
        socket.data = s
        self.sockets.add(socket as Socket<Conn<unknown>>)
        if (self.closed) return finish(socket)
        if (self.sockets.size > maxClients)
          return refuse(socket, `the bus has ${maxClients} clients already (maxClients); try again later`)
        if (address.kind === "unix") return attach(socket)
        s.authTimer = longTimeout(
          () =>
            refuse(socket, `authentication failed: no ${AUTH_METHOD} line within ${lineTimeoutMs} ms (lineTimeoutMs)`),
          lineTimeoutMs,
        )
      },
      data(socket: S, chunk: Uint8Array) {
        const s = socket.data
        if (s.state === "closing") return
        s.lastRead = performance.now()
        s.lineEnded = false
        // Refused before the splitter copies it: a chunk that only adds to an incomplete line past the cap.
        if (self.partialTotal + chunk.length > maxPartial && chunk.indexOf(10) < 0)
          return refuse(
            socket,
            `the bus holds ${maxPartial} bytes of incomplete lines already (maxPartialBytes); send whole lines`,
          )
        const ok = s.splitter.push(chunk)
        const closing = () => s.state === "closing" // a line in this chunk may have cut the client off
        const partial = closing() ? 0 : s.splitter.partialBytes
        self.partialTotal += partial - s.partial
        s.partial = partial
        if (!ok) return refuse(socket, `line longer than max_input_buffer (${maxIn} bytes); disconnecting`)
        if (closing()) return
        if (s.state === "authenticating" && partial > AUTH_LINE_MAX)
          return refuse(socket, "authenticate first: the first line must be the auth message")
        if (self.partialTotal > maxPartial)
          return refuse(
            socket,
            `the bus holds ${maxPartial} bytes of incomplete lines already (maxPartialBytes); send whole lines`,
          )
        if (s.lineEnded || partial === 0) stopLineTimer(s)
        if (partial > 0 && !s.lineTimer)
          s.lineTimer = longTimeout(
            () => refuse(socket, `a line stayed incomplete for ${lineTimeoutMs} ms (lineTimeoutMs); disconnecting`),
            lineTimeoutMs,
          )
        if (s.inbound?.full) socket.pause()
      },
      drain(socket: S) {
        socket.data.blocked = false
        flush(socket)
      },
      close(socket: S) {
        const s = socket.data
        self.sockets.delete(socket as Socket<Conn<unknown>>)
        if (!s) return
        self.partialTotal -= s.partial
        s.partial = 0
        stopLineTimer(s)
        s.authTimer?.clear()
        s.closeTimer?.clear()
        s.state = "closing"
        s.client?.close()
        for (const r of s.roomWaiters.splice(0)) r() // its lines are dropped now (the client is gone)
        s.gone.resolve()
      },
      end(socket: S) {
        // The client is done sending (half-close): answer what it sent (for up to drain_timeout_sec), then close.
        const s = socket.data
        s.ended = true
        if (s.state === "closing" || s.state === "draining") return // draining: close() takes it from here
        s.state = "closing"
        stopLineTimer(s)
        const answered = (async () => {
          await s.inbound?.idle()
          if (s.client) await host.settled(s.client)
        })()
        void within(Promise.race([answered, s.gone.promise]), host.limits.drain_timeout_sec * 1000).then(() =>
          finish(socket),
        )
      },
      error(socket: S) {
        socket.terminate()
      },
    }
    if (address.kind === "unix") {
      // a socket file whose process died is replaced; anything else there is refused and left as it is
      await claimSocketPath(address.path, "listen", ListenError)
      const server = await binding(spec, () =>
        listen<Conn<C>>({ unix: address.path, allowHalfOpen: true, socket: handlers }),
      )
      self.server = server as unknown as SocketListener<Conn<unknown>>
      self.address = address
    } else {
      const { hostname, port } = address
      const tcp = await binding(spec, () => listen<Conn<C>>({ hostname, port, allowHalfOpen: true, socket: handlers }))
      self.server = tcp as unknown as SocketListener<Conn<unknown>>
      self.address = { ...address, port: tcp.port }
      self.token = newToken()
      try {
        self.tokenFile = options.tokenFile ?? (await defaultStdioTokenFile(tcp.port))
        writeTokenFile(self.tokenFile, self.token)
      } catch (e) {
        tcp.stop(true)
        throw e
      }
    }
    return self
  }

  /** Stops taking new connections (the socket or token file goes); connected clients stay. */
  stopAccepting(): void {
    if (this.closed) return
    this.closed = true
    this.server.stop(false)
    if (this.address.kind === "unix")
      try {
        unlinkSync(this.address.path)
      } catch {}
    if (this.tokenFile) removeTokenFile(this.tokenFile, this.token!)
  }

  /** Stops accepting; each client gets answers to every line it sent (bounded), then is disconnected. */
  async close(): Promise<void> {
    this.stopAccepting()
    await Promise.all(
      [...this.sockets].map(async (socket) => {
        const s = socket.data as Conn<{ close(): void }>
        if (s.state === "open") await drainLines(socket, s)
        s.state = "closing"
        s.lineTimer?.clear()
        socket.resume() // to see the client close
        if (s.backlogBytes === 0) socket.shutdown()
        else s.endWhenFlushed = true
        await within(s.gone.promise, CLOSE_FLUSH_MS)
        socket.terminate()
      }),
    )
  }
}

/**
 * The bus is stopping: every line the client wrote before the close gets its answer (an error now), so lines
 * still in the socket are read too, until the client half-closed or has been quiet for CLOSE_QUIET_MS (bounded
 * by CLOSE_FLUSH_MS in all).
 */
async function drainLines(socket: Socket<unknown>, s: Conn<unknown>): Promise<void> {
  s.state = "draining"
  s.lastRead = performance.now()
  const end = s.lastRead + CLOSE_FLUSH_MS
  if (!s.inbound!.full) socket.resume()
  for (;;) {
    await within(s.inbound!.idle(), end - performance.now())
    const quiet = performance.now() - s.lastRead
    if (s.ended || quiet >= CLOSE_QUIET_MS || performance.now() >= end) break
    await sleep(Math.min(CLOSE_QUIET_MS - quiet, end - performance.now()))
  }
  s.state = "closing"
}
