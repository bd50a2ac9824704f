// Node's sockets in Bun's shape, as the runtime room's callers use them (docs/PROTOCOL.md §1): a connected fd of
// libslotbus's, and unix-socket listen and connect over node:net (the per-host elections). TCP stays Bun's (issue 67).
import { existsSync } from "node:fs"
import { createConnection, createServer, Socket as NetSocket } from "node:net"

/** What the runtime's socket handlers get for a socket (over an fd, or a unix socket): Bun's shape, as slotbus uses it. */
export interface FdSocket<T> {
  data: T
  write(bytes: Uint8Array | string): number
  end(): void
  terminate(): void
}
type FdHandlers<T> = {
  open?(s: FdSocket<T>): void
  data?(s: FdSocket<T>, bytes: Uint8Array): void
  drain?(s: FdSocket<T>): void
  close?(s: FdSocket<T>, error?: Error): void
  error?(s: FdSocket<T>, error: Error): void
}

/** A node:net socket behind Bun's socket shape, its events sent to Bun's handlers. */
function wrapSocket<T>(sock: NetSocket, data: T, handlers: FdHandlers<T>): FdSocket<T> {
  let full = false
  const s: FdSocket<T> = {
    data,
    // Bun's write says how much it took; node:net takes all and buffers: 0 while over its high-water mark.
    write(bytes) {
      if (full) return 0
      const n = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.length
      full = !sock.write(bytes)
      return n
    },
    end: () => void sock.end(),
    terminate: () => void sock.destroy(),
  }
  sock.on("data", (b: Buffer) => handlers.data?.(s, new Uint8Array(b.buffer, b.byteOffset, b.length)))
  sock.on("drain", () => {
    full = false
    handlers.drain?.(s)
  })
  sock.on("error", (e) => handlers.error?.(s, e))
  sock.on("close", () => handlers.close?.(s))
  return s
}

/** A socket over a connected unix socket fd (libslotbus's), with Bun's handler shape over node:net. */
export function connectFd<T>(fd: number, data: T, handlers: FdHandlers<T>): Promise<FdSocket<T>> {
  const s = wrapSocket(new NetSocket({ fd, readable: true, writable: true }), data, handlers)
  handlers.open?.(s)
  return Promise.resolve(s)
}

/** Bun.listen's and Bun.connect's options, as far as Node has them: unix sockets (TCP stays Bun's, issue 67). */
interface UnixOptions<T> {
  unix?: string
  hostname?: string
  port?: number
  data?: T
  allowHalfOpen?: boolean
  socket: FdHandlers<T> & { connectError?(s: FdSocket<T>, error: Error): void }
}

function unixPath(opts: UnixOptions<unknown>, what: string): string {
  if (opts.unix !== undefined) return opts.unix
  throw new Error(`slotbus: ${what} on a TCP port is not available on Node yet (issue 67); use a unix socket or Bun`)
}

/** A listener on a unix socket path, as Bun.listen's: `stop(true)` closes its connections too. */
export interface UnixListener {
  readonly unix: string
  stop(closeConnections?: boolean): void
}

/**
 * Listens on a unix socket path, bound before it returns (as Bun's: a path in use throws here, which the per-host
 * election relies on: of two that found a name free, one binds). Closing unlinks the path (libuv), then closes.
 */
export function listen<T>(opts: UnixOptions<T>): UnixListener {
  const path = unixPath(opts, "listen")
  const open = new Set<NetSocket>()
  const server = createServer({ allowHalfOpen: opts.allowHalfOpen ?? false }, (sock) => {
    open.add(sock)
    sock.on("close", () => open.delete(sock))
    const s = wrapSocket(sock, opts.data as T, opts.socket)
    opts.socket.open?.(s)
  })
  server.on("error", () => {}) // a failed bind's error comes a tick later: it is thrown below instead
  server.listen({ path })
  // a unix path binds inside listen() (no lookup): listening is set there, or the bind failed
  if (!server.listening) {
    server.close()
    if (existsSync(path))
      throw Object.assign(new Error(`listen EADDRINUSE: address already in use ${path}`), { code: "EADDRINUSE" })
    throw new Error(`listen: cannot bind ${path} (is its directory there and writable?)`)
  }
  return {
    unix: path,
    stop(closeConnections = false) {
      server.close()
      if (closeConnections) for (const sock of open) sock.destroy()
    },
  }
}

/** Connects to a unix socket path: the socket once connected; a refusal calls connectError and rejects. */
export function connect<T>(opts: UnixOptions<T>): Promise<FdSocket<T>> {
  const path = unixPath(opts, "connect")
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path, allowHalfOpen: opts.allowHalfOpen ?? false })
    const s = wrapSocket(sock, opts.data as T, {
      ...opts.socket,
      error: (_, e) => (connected ? opts.socket.error?.(s, e) : undefined),
      close: (_, e) => (connected ? opts.socket.close?.(s, e) : undefined),
    })
    let connected = false
    sock.once("connect", () => {
      connected = true
      opts.socket.open?.(s)
      resolve(s)
    })
    sock.once("error", (e) => {
      if (connected) return
      opts.socket.connectError?.(s, e)
      reject(e)
    })
  })
}
