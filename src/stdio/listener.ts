// Socket listeners for external NDJSON clients (TCP, unix): one BusClient per connection, so each client's ids
// and session stay its own. A client that sends a line past max_input_buffer, or reads too slowly for
// max_output_queue, is disconnected: the bus never buffers without bound for anyone.
import { existsSync, unlinkSync } from "node:fs"
import type { Socket, SocketListener } from "bun"
import type { BusClient, StdioBus } from "./bus.ts"
import { BusErrorCode } from "./errors.ts"
import { LineSplitter } from "./lines.ts"

export type ListenAddress = { kind: "tcp"; hostname: string; port: number } | { kind: "unix"; path: string }

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
  if (!m || port > 65535) throw new TypeError(`"${spec}" is not an address: use unix:/path/to.sock or tcp:host:port (tcp:0 picks a free port)`)
  return { kind: "tcp", hostname: m[1] || "127.0.0.1", port }
}

export function formatAddress(a: ListenAddress): string {
  return a.kind === "unix" ? `unix:${a.path}` : `tcp:${a.hostname}:${a.port}`
}

interface ConnState {
  client: BusClient & { close(): void }
  splitter: LineSplitter
  /** Bytes the kernel did not take yet, in order. */
  backlog: Uint8Array[]
  backlogBytes: number
  chain: Promise<void>
}

const encoder = new TextEncoder()

export class StdioListener {
  private closed = false

  private constructor(private readonly server: SocketListener<ConnState>, readonly address: ListenAddress, private readonly sockets: Set<Socket<ConnState>>) {}

  /** How many clients are connected through this listener. */
  get clientCount(): number {
    return this.sockets.size
  }

  static async open(bus: StdioBus, spec: string): Promise<StdioListener> {
    const address = parseAddress(spec)
    const { max_input_buffer: maxIn, max_output_queue: maxOut } = bus.limits
    const sockets = new Set<Socket<ConnState>>()
    const write = (socket: Socket<ConnState>, bytes: Uint8Array) => {
      const s = socket.data
      if (s.backlogBytes > 0) {
        s.backlog.push(bytes)
        s.backlogBytes += bytes.length
      } else {
        const n = socket.write(bytes)
        if (n < bytes.length) {
          s.backlog.push(bytes.subarray(Math.max(n, 0)))
          s.backlogBytes += bytes.length - Math.max(n, 0)
        }
      }
      if (s.backlogBytes > maxOut) socket.end() // a client that does not read its answers is dropped, not buffered for
    }
    const handlers = {
      open(socket: Socket<ConnState>) {
        const client = bus.attachClient((message) => write(socket, encoder.encode(JSON.stringify(message) + "\n")))
        socket.data = {
          client, backlog: [], backlogBytes: 0, chain: Promise.resolve(),
          splitter: new LineSplitter(maxIn, (line) => {
            socket.data.chain = socket.data.chain.then(() => bus.ingest(client, line)).catch(() => {})
          }),
        }
        sockets.add(socket)
      },
      data(socket: Socket<ConnState>, chunk: Uint8Array) {
        if (!socket.data.splitter.push(chunk)) {
          write(socket, encoder.encode(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: BusErrorCode.InvalidRequest, message: `line longer than max_input_buffer (${maxIn} bytes); disconnecting` } }) + "\n"))
          socket.end()
        }
      },
      drain(socket: Socket<ConnState>) {
        const s = socket.data
        while (s.backlog.length > 0) {
          const head = s.backlog[0]!
          const n = socket.write(head)
          if (n <= 0) return
          s.backlogBytes -= n
          if (n < head.length) {
            s.backlog[0] = head.subarray(n)
            return
          }
          s.backlog.shift()
        }
      },
      close(socket: Socket<ConnState>) {
        sockets.delete(socket)
        socket.data?.client.close()
      },
      end(socket: Socket<ConnState>) {
        socket.end()
      },
      error(socket: Socket<ConnState>) {
        socket.end()
      },
    }
    let server: SocketListener<ConnState>
    let port = 0
    if (address.kind === "unix") {
      if (existsSync(address.path)) {
        // A socket file with nobody behind it is left over from a dead bus: take its place; a live one is an error.
        const alive = await Bun.connect({ unix: address.path, socket: { data() {} } }).then((s) => (s.end(), true), () => false)
        if (alive) throw new TypeError(`${address.path}: another process is listening there; pick another path`)
        unlinkSync(address.path)
      }
      server = Bun.listen<ConnState>({ unix: address.path, socket: handlers })
    } else {
      const tcp = Bun.listen<ConnState>({ hostname: address.hostname, port: address.port, socket: handlers })
      port = tcp.port
      server = tcp
    }
    const bound: ListenAddress = address.kind === "tcp" ? { ...address, port } : address
    return new StdioListener(server, bound, sockets)
  }

  /** Stops taking new connections (the socket file goes); connected clients stay. */
  stopAccepting(): void {
    if (this.closed) return
    this.closed = true
    this.server.stop(false)
    if (this.address.kind === "unix") try { unlinkSync(this.address.path) } catch {}
  }

  /** Stops accepting and disconnects every client. */
  close(): void {
    this.stopAccepting()
    for (const s of this.sockets) s.end()
  }
}
