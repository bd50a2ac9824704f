// `slotbus stdio --config bus.json [--listen unix:/tmp/bus.sock]…` runs a stdio bus; without --listen this process's
// own stdin/stdout are its one client (stdio_bus's stdio mode). `slotbus stdio connect <address>` bridges its
// stdin/stdout to a listening bus, so a stdio-only client (an MCP client spawning a server) can share the pool.
import { parseArgs } from "node:util"
import { SlotBusError } from "../core/index.ts"
import { printable } from "../kit/index.ts"
import { serveStatus, type StatusServer } from "../status/index.ts"
import {
  AUTH_METHOD,
  BusErrorCode,
  defaultStdioTokenFile,
  parseAddress,
  parseHttpAddress,
  readTokenFile,
  STDIO_TOKEN_ENV,
  STDIO_TOKEN_FILE_ENV,
  StdioBus,
} from "../stdio/index.ts"
import { Inbound, LineSplitter } from "../stdio/internal.ts"
import { CliProblem, help, runCommand, untilStopped } from "./prelude.ts"
import { connect as dial, sleep, stdinStream } from "../runtime/index.ts"

const USAGE = `usage: slotbus stdio --config bus.json [--listen unix:/tmp/bus.sock | tcp:127.0.0.1:9800 | http:127.0.0.1:8080]...
                     [--token-file path] [--http-token-file path]
                     [--allow-origin https://app.example]... [--allow-host mcp.example]...
                     [--status tcp:127.0.0.1:9300 | unix:/tmp/bus-status.sock] [--quiet]
       slotbus stdio connect unix:/tmp/bus.sock | tcp:host:port [--token-file path]

The first form runs the pools of a stdio_bus configuration file. With --listen it serves NDJSON clients on
each address; without, its own stdin/stdout are the client: a stdin line longer than max_input_buffer is
answered with a -32600 error, what came before it is answered, and it exits 1; a reader of its stdout that
went away (| head -1) stops it quietly, exit 0. Worker stderr and lifecycle
go to stderr. An address that is no address, or that cannot be taken (a port in use, a missing directory, a
token file it cannot write), is one line on stderr and exit 2, no worker left running.
SIGHUP replaces every worker surge-first, each once its successor answered a ping (a deploy; see
"Reload" in src/stdio/README.md). With --status it serves its live view there (pools, worker processes, restarts): open the tcp address in a
browser, or run \`slotbus status <address>\` (http://host:port, or unix:/path).
An http: address serves MCP clients over Streamable HTTP: the first pool at /mcp, each pool at /mcp/<pool id>;
only requests without an Origin or from a loopback one, to a loopback Host, are taken unless --allow-origin
and --allow-host name more. With --http-token-file a new token is written to that file (this user's only) and
every HTTP request must carry "Authorization: Bearer <token>".
The second form speaks stdio on one side and the listener on the other, reading each side only as fast as
the other takes it. It exits 0 once stdin ended and the bus answered it, or quietly once its stdout's reader
went away (| head -1); refused by the bus (a wrong token, a
line too long, too many clients) it says why on stderr and exits 1, as it does when the bus closes first.
A TCP listener writes a token to a file only this user can read (--token-file; default
slotbus-stdio-<port>.token in $XDG_RUNTIME_DIR if it is the user's 0700 directory, else in the socket
directory); connect reads it from there
(or from $${STDIO_TOKEN_FILE_ENV}, or takes $${STDIO_TOKEN_ENV} itself).`

/** Runs `slotbus stdio …`; resolves with the exit code. */
export function runStdioCli(argv: string[]): Promise<number> {
  // Configuration, spawn and address mistakes are the user's to fix: say what, without a stack trace.
  return runCommand(
    "stdio",
    () => (argv[0] === "connect" ? connect(argv.slice(1)) : serve(argv)),
    (e) => e instanceof SlotBusError || e instanceof TypeError,
  )
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string", short: "c" },
      listen: { type: "string", short: "l", multiple: true },
      "token-file": { type: "string" },
      "allow-origin": { type: "string", multiple: true },
      "http-token-file": { type: "string" },
      "allow-host": { type: "string", multiple: true },
      status: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      help: { type: "boolean", short: "h" },
    },
  })
  if (values.help) return help(USAGE)
  if (!values.config) throw new CliProblem("--config is required", 2, USAGE)
  // a typo fails before any spawn
  const statusAt = values.status === undefined ? undefined : parseAddress(values.status)
  for (const spec of values.listen ?? [])
    if (spec.startsWith("http:")) parseHttpAddress(spec)
    else parseAddress(spec)
  const bus = StdioBus.fromConfig(values.config)
  const say = (s: string) => values.quiet || process.stderr.write(`[slotbus stdio] ${s}\n`)
  // a worker's bytes must not drive the operator's terminal: escaped as the supervised pools' lines are
  bus.on("log", (l) => process.stderr.write(`[${l.pool}#${l.instance} ${l.pid} ${l.level}] ${printable(l.line)}\n`))
  bus.on("worker-start", (e) => say(`${e.pool}#${e.instance} started, pid ${e.pid}`))
  bus.on("worker-exit", (e) => say(`${e.pool}#${e.instance} pid ${e.pid} exited (${e.signal ?? `code ${e.code}`})`))
  bus.on("worker-restart", (e) => say(`${e.pool}#${e.instance} restarting in ${e.delayMs} ms`))
  bus.on("pool-failed", (e) => say(`pool ${e.pool} FAILED: ${e.reason}`))
  bus.on("worker-replaced", (e) => say(`${e.pool}#${e.instance} pid ${e.pid} replaced by pid ${e.successor}`))
  await bus.start()
  let status: StatusServer | undefined
  if (statusAt) {
    status = await serveStatus(
      [bus],
      statusAt.kind === "unix"
        ? { unix: statusAt.path }
        : { port: statusAt.port, hostname: statusAt.hostname, title: `slotbus stdio --config ${values.config}` },
    ).catch(async (e: unknown) => {
      await bus.stop()
      throw new TypeError(`--status ${values.status}: ${(e as Error).message}`)
    })
    say(`status at ${status.url}`)
  }
  const listenOn = async (spec: string) => {
    if (spec.startsWith("http:")) {
      const l = await bus.listen(spec as `http:${string}`, {
        allowedOrigins: values["allow-origin"] ?? [],
        allowedHosts: values["allow-host"] ?? [],
        tokenFile: values["http-token-file"],
      })
      const token = l.tokenFile ? `; bearer token in ${l.tokenFile}` : ""
      return say(`listening on ${l.url} (MCP Streamable HTTP; pools at ${l.url}/<pool id>${token})`)
    }
    const l = await bus.listen(spec, { tokenFile: values["token-file"] })
    say(
      `listening on ${l.address.kind === "unix" ? `unix:${l.address.path}` : `tcp:${l.address.hostname}:${l.address.port} (token file ${l.tokenFile})`}`,
    )
  }
  const { promise: done, resolve: finish } = Promise.withResolvers<void>()
  let exitCode = 0
  const out = pacedStdout(() => finish()) // our client, reading stdout, left: stop as when stdin ends
  const { stopped, off } = untilStopped("stdio")
  void stopped.then(finish)
  // SIGHUP (systemctl reload): every pool's workers replaced surge-first, each once its successor is ready
  const reload = () => {
    say("SIGHUP: reloading the workers")
    bus.reload().then(
      () => say(`reloaded ${bus.workerCount} workers`),
      (e: Error) => process.stderr.write(`[slotbus stdio] reload failed: ${e.message}\n`),
    )
  }
  process.on("SIGHUP", reload)
  if (values.listen?.length) {
    // an address that cannot be taken (a port in use, a path or token file in a missing directory) is a ListenError:
    // one line and exit 2, the workers stopped
    for (const spec of values.listen) {
      await listenOn(spec).catch(async (e: unknown) => {
        off()
        process.off("SIGHUP", reload)
        await status?.stop()
        await bus.stop()
        throw e
      })
    }
  } else {
    const client = bus.attachClient((m) => out.write(JSON.stringify(m) + "\n"))
    // As a socket client is paced: while more than half of max_output_queue of answers wait for the client to read
    // them, no line of its is taken; past max_output_queue of lines not yet taken, stdin is not read until there is room.
    const half = bus.limits.max_output_queue / 2
    let room: PromiseWithResolvers<void> | null = null
    const inbound = new Inbound(
      (line) => (out.waiting > half ? out.room(half).then(() => bus.ingest(client, line)) : bus.ingest(client, line)),
      bus.limits.max_output_queue,
      () => room?.resolve(),
    )
    const splitter = new LineSplitter(bus.limits.max_input_buffer, (line) => inbound.push(line))
    void (async () => {
      for await (const chunk of stdinStream()) {
        if (!splitter.push(chunk)) {
          // as a socket client is cut off: told why (-32600, id null); what it sent before is answered, then exit 1
          const message = `line longer than max_input_buffer (${bus.limits.max_input_buffer} bytes); stopping`
          const error = { code: BusErrorCode.InvalidRequest, message, data: { disconnected: true } }
          out.write(`${JSON.stringify({ jsonrpc: "2.0", id: null, error })}\n`)
          process.stderr.write(`slotbus stdio: a stdin ${message} (exit 1)\n`)
          exitCode = 1
          break
        }
        if (inbound.full) await (room = Promise.withResolvers<void>()).promise
      }
      await inbound.idle()
      finish()
    })()
  }
  await done
  off()
  process.off("SIGHUP", reload)
  await status?.stop()
  await bus.stop()
  // the last answers go out before the process exits, for as long as a stop waits for them
  await Promise.race([out.room(0), sleep(bus.limits.drain_timeout_sec * 1000)])
  return exitCode
}

/** connect: past this many bytes waiting on stdout, the socket is not read until half of them went out. */
const STDOUT_HELD = 1024 * 1024

/** This process's stdout, counting what was written and not yet taken by its reader (a client that does not read
 * holds it here): `waiting` bytes (UTF-16 units, near enough) wait; `room(n)` resolves once at most `n` do.
 * `gone` calls back once the reader went away (EPIPE: `| head -1`); nothing waits on stdout from then on. */
function pacedStdout(gone: () => void) {
  let waiting = 0
  let closed = false
  let waiters: { n: number; resolve: () => void }[] = []
  const written = (size: number) => () => {
    waiting -= size
    for (const w of waiters) if (waiting <= w.n) w.resolve()
    if (waiters.length > 0) waiters = waiters.filter((w) => waiting > w.n)
  }
  const lost = () => {
    if (closed) return
    closed = true
    waiting = 0
    for (const w of waiters) w.resolve()
    waiters = []
    gone()
  }
  // Bun throws EPIPE from write, Node emits it here; either way the reader left, which is no error of ours
  process.stdout.on("error", lost)
  return {
    get waiting() {
      return waiting
    },
    get closed() {
      return closed
    },
    write(text: string | Uint8Array) {
      if (closed) return
      waiting += text.length
      try {
        process.stdout.write(text, written(text.length))
      } catch {
        lost()
      }
    },
    room(n: number): Promise<void> {
      if (waiting <= n) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ n, resolve }))
    },
  }
}

async function connect(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { "token-file": { type: "string" }, help: { type: "boolean", short: "h" } },
  })
  const spec = positionals[0]
  if (values.help) return help(USAGE)
  if (!spec) {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }
  const address = parseAddress(spec)
  let token: string | null = null
  if (address.kind === "tcp") {
    try {
      token =
        process.env[STDIO_TOKEN_ENV] ||
        readTokenFile(
          values["token-file"] ?? process.env[STDIO_TOKEN_FILE_ENV] ?? (await defaultStdioTokenFile(address.port)),
        )
    } catch (e) {
      process.stderr.write(
        `slotbus stdio connect: cannot read the listener's token (${(e as Error).message}); pass --token-file or set ${STDIO_TOKEN_ENV}\n`,
      )
      return 1
    }
  }
  const { promise: closed, resolve: onClose } = Promise.withResolvers<void>()
  // Paced both ways, so neither a slow reader of our stdout nor a bus that stops reading holds bytes here: while
  // more than STDOUT_HELD bytes wait on stdout the socket is not read (the bus then paces, or drops, that client),
  // and stdin is read no further than the socket takes.
  const out = pacedStdout(() => onClose())
  let drained: (() => void) | null = null
  let reading = true
  const tail = lastLine()
  let stdinEnded = false
  const handlers = {
    data(s: { pause(): void; resume(): void }, chunk: Uint8Array) {
      out.write(chunk)
      tail.push(chunk)
      if (!reading || out.waiting <= STDOUT_HELD) return
      reading = false
      s.pause()
      void out.room(STDOUT_HELD / 2).then(() => {
        reading = true
        s.resume()
      })
    },
    drain: () => drained?.(),
    close: () => onClose(),
    error: () => onClose(),
  }
  let socket
  try {
    socket =
      address.kind === "unix"
        ? await dial({ unix: address.path, allowHalfOpen: true, socket: handlers })
        : await dial({ hostname: address.hostname, port: address.port, allowHalfOpen: true, socket: handlers })
  } catch (e) {
    process.stderr.write(
      `slotbus stdio connect: cannot connect to ${spec}: ${(e as Error).message}; is \`slotbus stdio --listen ${spec}\` running?\n`,
    )
    return 1
  }
  let gone = false
  void closed.then(() => {
    gone = true
    drained?.()
  })
  /** Writes all of `bytes`, waiting for the socket to drain; false once it closed. */
  const send = async (bytes: Uint8Array): Promise<boolean> => {
    while (!gone) {
      const n = socket.write(bytes)
      if (n < 0) return false
      if (n >= bytes.length) return true
      bytes = bytes.subarray(n)
      await new Promise<void>((r) => (drained = r))
      drained = null
    }
    return false
  }
  if (token !== null)
    await send(
      new TextEncoder().encode(`${JSON.stringify({ jsonrpc: "2.0", method: AUTH_METHOD, params: { token } })}\n`),
    )
  void (async () => {
    for await (const chunk of stdinStream()) if (!(await send(chunk))) return
    stdinEnded = true
    socket.shutdown() // half-close: the bus still sends the answers to what we sent, then closes
  })()
  await closed
  if (out.closed) {
    socket.terminate() // our reader left (| head -1): nothing more to pass on, and that is no failure
    return 0
  }
  await out.room(0) // the last answers reach our reader before the process exits
  // The bus refuses a client (a wrong token, a line too long, too many clients) with an error marked
  // data.disconnected as its last line, then closes: that, or a close before our stdin ended, is a failure.
  const refusal = tail.refusal()
  if (refusal) {
    process.stderr.write(`slotbus stdio connect: the bus refused this client: ${printable(refusal)} (exit 1)\n`)
    return 1
  }
  if (!stdinEnded) {
    process.stderr.write(`slotbus stdio connect: the bus at ${spec} closed the connection (exit 1)\n`)
    return 1
  }
  return 0
}

/** The last bytes the bus sent (at most 4 KiB: a refusal is short), to tell a refusal from a close. */
function lastLine() {
  const KEEP = 4096
  let tail = new Uint8Array(0)
  return {
    push(chunk: Uint8Array) {
      tail = Buffer.concat([tail, chunk.subarray(-KEEP)]).subarray(-KEEP)
    },
    /** The message of the refusal the bus ended with, or null. */
    refusal(): string | null {
      const text = new TextDecoder().decode(tail).replace(/\n$/, "")
      try {
        const m = JSON.parse(text.slice(text.lastIndexOf("\n") + 1))
        return m?.id === null && m.error?.data?.disconnected === true ? String(m.error.message) : null
      } catch {
        return null
      }
    },
  }
}
