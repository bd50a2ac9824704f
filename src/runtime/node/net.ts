// Node's sockets as the contract's (runtime.ts) (docs/PROTOCOL.md §1): a connected fd of
// libslotbus's, and listen and connect over node:net: unix sockets (the per-host elections) and TCP (the stdio bus's
// tcp: listener, issue 67).
import { existsSync } from "node:fs"
import { type AddressInfo, createConnection, createServer, type Server, Socket as NetSocket } from "node:net"
import type { Socket, SocketHandlers, SocketOptions, TcpListener, UnixListener } from "../runtime.ts"

/** A node:net socket as the contract's Socket, its events sent to its handlers. */
function wrapSocket<T>(sock: NetSocket, data: T, handlers: SocketHandlers<T>): Socket<T> {
  let full = false
  const s: Socket<T> = {
    data,
    // Bun's write says how much it took; node:net takes all and buffers: 0 while over its high-water mark.
    write(bytes) {
      if (full) return 0
      const n = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.length
      full = !sock.write(bytes)
      return n
    },
    end: () => void sock.end(),
    shutdown: () => void sock.end(),
    terminate: () => void sock.destroy(),
    pause: () => void sock.pause(),
    resume: () => void sock.resume(),
  }
  sock.on("data", (b: Buffer) => handlers.data?.(s, new Uint8Array(b.buffer, b.byteOffset, b.length)))
  sock.on("drain", () => {
    full = false
    handlers.drain?.(s)
  })
  sock.on("end", () => handlers.end?.(s))
  sock.on("error", (e) => handlers.error?.(s, e))
  sock.on("close", () => handlers.close?.(s))
  return s
}

/** A socket over a connected unix socket fd (libslotbus's), over node:net. */
export function connectFd<T>(fd: number, data: T, handlers: SocketHandlers<T>): Promise<Socket<T>> {
  const s = wrapSocket(new NetSocket({ fd, readable: true, writable: true }), data, handlers)
  handlers.open?.(s)
  return Promise.resolve(s)
}

/**
 * Listens on a unix socket path, bound before it returns (as Bun's: a path in use throws here, which the per-host
 * election relies on: of two that found a name free, one binds). Closing unlinks the path (libuv), then closes.
 * On a TCP port (`hostname` and `port`, 0 picks one): bound once the promise settles (Node looks the name up
 * first), which is when its port is known; a port in use rejects with EADDRINUSE.
 */
export function listen<T>(opts: SocketOptions<T> & { unix: string }): UnixListener<T>
export function listen<T>(opts: SocketOptions<T> & { port: number }): Promise<TcpListener<T>>
export function listen<T>(opts: SocketOptions<T>): UnixListener<T> | Promise<TcpListener<T>> {
  const open = new Set<NetSocket>()
  const server = createServer({ allowHalfOpen: opts.allowHalfOpen ?? false }, (sock) => {
    open.add(sock)
    sock.on("close", () => open.delete(sock))
    const s = wrapSocket(sock, opts.data as T, opts.socket)
    opts.socket.open?.(s)
  })
  const stop = (closeConnections = false) => {
    server.close()
    if (closeConnections) for (const sock of open) sock.destroy()
  }
  const path = opts.unix
  if (path === undefined)
    return bindTcp(server, opts.port ?? 0, opts.hostname ?? "0.0.0.0").then(({ address, port }) => ({
      hostname: address,
      port,
      stop,
    }))
  bindUnix(server, path)
  return { unix: path, stop }
}

/**
 * Binds `server` (node:net's or node:http's) on a unix socket path before it returns, as Bun's listen does: a path in
 * use throws EADDRINUSE here. Exclusive: in a node:cluster worker a listen is otherwise handed to the primary and
 * binds later (and a port is shared with the other workers); slotbus's sockets are this process's own.
 */
export function bindUnix(server: Server, path: string): void {
  server.on("error", () => {}) // a failed bind's error comes a tick later: it is thrown below instead
  server.listen({ path, exclusive: true })
  // a unix path binds inside listen() (no lookup): listening is set there, or the bind failed
  if (server.listening) return
  server.close()
  if (existsSync(path))
    throw Object.assign(new Error(`listen EADDRINUSE: address already in use ${path}`), { code: "EADDRINUSE" })
  throw new Error(`listen: cannot bind ${path} (is its directory there and writable?)`)
}

/**
 * Binds `server` on a TCP port (0 picks one) of `host`: its address once bound (Node looks the host up first).
 * Exclusive, as bindUnix: in a node:cluster worker the port is this process's, a port in use EADDRINUSE as in Bun.
 */
export function bindTcp(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen({ port, host, exclusive: true }, () => {
      server.off("error", reject)
      resolve(server.address() as AddressInfo)
    })
  })
}

/** Connects to a unix socket path or a TCP host and port: the socket once connected; a refusal calls connectError and rejects. */
export function connect<T>(opts: SocketOptions<T>): Promise<Socket<T>> {
  const allowHalfOpen = opts.allowHalfOpen ?? false
  return new Promise((resolve, reject) => {
    const sock =
      opts.unix !== undefined
        ? createConnection({ path: opts.unix, allowHalfOpen })
        : createConnection({ host: opts.hostname ?? "localhost", port: opts.port ?? 0, allowHalfOpen })
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
