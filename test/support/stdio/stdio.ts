// Helpers for the stdio bus tests: configs for test/stdio/workers/worker.ts, a bus that is always stopped,
// waiting for a condition or an event, and a raw NDJSON socket client.
import { join } from "node:path"
import type { Socket } from "bun"
import { until } from "../helpers.ts"
import {
  AUTH_METHOD,
  StdioBus,
  formatAddress,
  readTokenFile,
  type LimitsConfig,
  type StdioBusEvents,
  type StdioBusConfigInput,
  type StdioListener,
} from "../../../src/stdio/index.ts"

export const STDIO_WORKER = join(import.meta.dir, "..", "..", "stdio", "workers", "worker.ts")

export function workerConfig(
  mode = "echo",
  instances = 1,
  limits: Partial<LimitsConfig> = {},
  id = "w",
): StdioBusConfigInput {
  return { pools: [{ id, command: process.execPath, args: [STDIO_WORKER, mode], instances }], limits }
}

const EVERYTHING = join(import.meta.dir, "..", "..", "..", "node_modules", "@modelcontextprotocol", "server-everything")

/** A pool of `instances` @modelcontextprotocol/server-everything on stdio, their handshake replayed. */
export const everythingPool = (instances = 1, id = "everything") => ({
  id,
  command: process.execPath,
  args: [join(EVERYTHING, "dist", "index.js"), "stdio"],
  instances,
  initialize: "replay" as const,
})

/** A configuration of one pool of server-everything. */
export const everything = (instances = 1): StdioBusConfigInput => ({ pools: [everythingPool(instances)] })

/** Runs `fn` with a started bus and always stops it (SIGKILL after 200 ms) so no worker outlives the test. */
export async function withBus<T>(config: StdioBusConfigInput, fn: (bus: StdioBus) => Promise<T>): Promise<T> {
  const bus = StdioBus.fromConfig(config)
  await bus.start()
  try {
    return await fn(bus)
  } finally {
    await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
  }
}

/** The next `event` from `bus` whose payload satisfies `pred`. */
export function nextEvent<K extends keyof StdioBusEvents>(
  bus: StdioBus,
  event: K,
  pred: (...a: StdioBusEvents[K]) => boolean = () => true,
  ms = 10_000,
): Promise<StdioBusEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (off(), reject(new Error(`no ${event} event within ${ms} ms`))), ms)
    const off = bus.on(event, (...a) => {
      if (!pred(...a)) return
      clearTimeout(timer)
      off()
      resolve(a[0])
    })
  })
}

export interface RawClient {
  send(line: string): void
  /** Writes `text` as it is (no newline added). */
  write(text: string): void
  /** Every parsed message received so far, and each one's line as it came. */
  readonly received: any[]
  readonly lines: string[]
  /** The first message matching pred; `timeoutMs` for waits behind a long queue on a loaded machine. */
  waitFor(pred: (m: any) => boolean, what: string, timeoutMs?: number): Promise<any>
  /** Reads nothing more until resumed (what the bus writes stays in the kernel, then in the bus). */
  pause(): void
  close(): void
  readonly closed: Promise<void>
}

/** A raw NDJSON client of `listener` (a TCP one authenticates first, with the token from its file). */
export async function clientOf(listener: StdioListener): Promise<RawClient> {
  const c = await rawClient(formatAddress(listener.address))
  if (listener.tokenFile)
    c.send(
      JSON.stringify({ jsonrpc: "2.0", method: AUTH_METHOD, params: { token: readTokenFile(listener.tokenFile) } }),
    )
  return c
}

/** A raw NDJSON client on "unix:/path" or "tcp:host:port" (a TCP one still has to authenticate: clientOf does). */
export async function rawClient(address: string): Promise<RawClient> {
  const received: any[] = []
  const rawLines: string[] = []
  let rest = ""
  const { promise: closed, resolve: onClose } = Promise.withResolvers<void>()
  const decoder = new TextDecoder()
  const handlers = {
    data(_s: unknown, chunk: Uint8Array) {
      const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
      rest = lines.pop()!
      for (const l of lines) if (l) received.push(JSON.parse(l)), rawLines.push(l)
    },
    close: () => onClose(),
    error: () => onClose(),
  }
  const socket = address.startsWith("unix:")
    ? await Bun.connect({ unix: address.slice(5), socket: handlers })
    : await Bun.connect({ hostname: address.split(":")[1]!, port: Number(address.split(":")[2]), socket: handlers })
  return {
    send: (line) => void socket.write(line + "\n"),
    write: (text) => void socket.write(text),
    received,
    lines: rawLines,
    async waitFor(pred, what, timeoutMs) {
      await until(() => received.some(pred), what, timeoutMs)
      return received.find(pred)
    },
    pause: () => void socket.pause(),
    close: () => socket.end(),
    closed,
  }
}

export interface PacedClient {
  readonly socket: Socket<undefined>
  /** The ids of the answers received so far. */
  readonly answered: Set<unknown>
  readonly closed: Promise<void>
  /** Bytes of the text not written yet. */
  readonly unsent: number
  /** Writes nothing more; returns how many whole lines the socket took. */
  stopWriting(): number
}

/** A unix client that writes `text` as fast as its socket takes it (waiting while write returns 0, as a client should). */
export async function pacedClient(path: string, text: string): Promise<PacedClient> {
  const answered = new Set<unknown>()
  let rest = ""
  const { promise: closed, resolve: onClose } = Promise.withResolvers<void>()
  let bytes = Buffer.from(text)
  let accepted = 0
  let writing = true
  const flush = (s: Socket<undefined>) => {
    while (writing && bytes.length > 0) {
      const k = s.write(bytes)
      if (k <= 0) return // until the socket drains
      bytes = bytes.subarray(k)
      accepted += k
    }
  }
  const socket = await Bun.connect({
    unix: path,
    socket: {
      data(_s, chunk) {
        const lines = (rest + chunk.toString()).split("\n")
        rest = lines.pop()!
        for (const l of lines) answered.add(JSON.parse(l).id)
      },
      drain: flush,
      close: () => onClose(),
      error: () => onClose(),
    },
  })
  flush(socket)
  return {
    socket,
    answered,
    closed,
    get unsent() {
      return bytes.length
    },
    stopWriting() {
      writing = false
      return text.slice(0, accepted).split("\n").length - 1
    },
  }
}

/** POSTs of a JSON-RPC message to an MCP endpoint `url` asking for a JSON answer, in `session` when given. */
export function mcpPost(url: string) {
  const json = { "content-type": "application/json", accept: "application/json" }
  return (body: object, session?: string) =>
    fetch(url, {
      method: "POST",
      headers: session ? { ...json, "mcp-session-id": session } : json,
      body: JSON.stringify(body),
    })
}
