// A small NDJSON JSON-RPC worker for the stdio bus tests. Mode (argv[2]):
//   echo (default)  answers every request; methods below change what it does
//   crash-at-start  exits with 1 at once (restart intensity)
//   no-read        never reads stdin (backpressure)
//   ignore-term    echo, but ignores SIGTERM (stop must SIGKILL it)
//   read-on-usr1   echo, but reads nothing from stdin until SIGUSR1 (a full queue that drains when told); says
//                  "waiting-for-usr1" once the signal is handled
// Methods: echo → { echo: params, pid, instance }; sleep { ms, tag } → { slept, pid, tag } after ms; fail → JSON-RPC error;
// crash → exit(3); answer-exit → the answer, then exit(0) at once; close-stdout → the answer, then its stdout closed
// while it runs on, reading stdin (and answering nothing more); big { bytes } → one stdout line that long; garbage → a non-JSON line, then the answer;
// stray → an answer to an id nobody used, then the answer; notify → a notification, then the answer; notify-many
// { count, bytes } → count notifications "note" { i, pad } of about bytes each, then the answer;
// ask → a request to the client, answered with the client's result; ask-many { n } → n requests to the client
// at once, answered "asked"; ignore → never answered; log { lines } → stderr lines; hold → a notification
// "holding" { id } (the id this worker saw), then no answer until cancelled: LSP's $/cancelRequest { id } gets it
// answered with RequestCancelled (-32800), as a language server does; MCP's notifications/cancelled drops it.
// initialize is echoed, unless its params say refuse (a JSON-RPC error), crash (exit(3)) or hold ("holding" { id },
// answered once a notification "release" comes). Every notification is reported back as "seen" { method, params, pid }.
import { closeSync, fstatSync } from "node:fs"

const mode = process.argv[2] ?? "echo"
const out = Bun.stdout.writer()
let stdoutClosed = false
const send = (m: unknown) => {
  if (stdoutClosed) return
  out.write(JSON.stringify(m) + "\n")
  out.flush()
}
/** Closes fd 1 and the duplicate of it Bun keeps: the pipe's reader then sees its end while this process runs on. */
const closeStdout = () => {
  const { dev, ino } = fstatSync(1)
  for (let fd = 1; fd < 256; fd++)
    try {
      const s = fstatSync(fd)
      if (fd !== 2 && s.dev === dev && s.ino === ino) closeSync(fd)
    } catch {
      // not open
    }
}
if (mode === "crash-at-start") process.exit(1)
if (mode === "ignore-term") process.on("SIGTERM", () => process.stderr.write("ignoring SIGTERM\n"))
if (mode === "no-read") {
  process.stderr.write("not reading stdin\n")
  setInterval(() => {}, 1 << 30)
} else {
  const asked = new Map<string | number, (result: unknown) => void>()
  let nextAsk = 0
  const held = new Set<string | number>()
  const heldInitialize: (string | number)[] = []
  const handle = async (msg: { id?: string | number; method?: string; params?: any; result?: unknown }) => {
    if (msg.method === undefined) return asked.get(msg.id!)?.(msg.result)
    if (msg.id === undefined) {
      if (msg.method === "exit") process.exit(0)
      if (msg.method === "release")
        for (const id of heldInitialize.splice(0)) send({ jsonrpc: "2.0", id, result: { released: true } })
      if (msg.method === "$/cancelRequest" && held.delete(msg.params?.id))
        send({ jsonrpc: "2.0", id: msg.params.id, error: { code: -32800, message: "RequestCancelled" } })
      if (msg.method === "notifications/cancelled") held.delete(msg.params?.requestId)
      return send({
        jsonrpc: "2.0",
        method: "seen",
        params: { method: msg.method, params: msg.params, pid: process.pid },
      })
    }
    const reply = (result: unknown) => send({ jsonrpc: "2.0", id: msg.id, result })
    switch (msg.method) {
      case "sleep":
        await Bun.sleep(msg.params?.ms ?? 100)
        return reply({ slept: msg.params?.ms, pid: process.pid, tag: msg.params?.tag })
      case "fail":
        return send({
          jsonrpc: "2.0",
          id: msg.id,
          error: { code: 42, message: "asked to fail", data: { pid: process.pid } },
        })
      case "crash":
        return process.exit(3)
      case "answer-exit":
        out.write(
          JSON.stringify({
            jsonrpc: "2.0",
            id: msg.id,
            result: { last: true, pid: process.pid, pad: "z".repeat(msg.params?.bytes ?? 0) },
          }) + "\n",
        )
        await out.flush() // all of it in the pipe (process.exit would drop what Bun still buffers), then exit at once
        return process.exit(0)
      case "close-stdout":
        reply({ closing: true, pid: process.pid })
        await out.flush()
        stdoutClosed = true
        return closeStdout()
      case "big":
        out.write(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: "x".repeat(msg.params.bytes) }) + "\n")
        return out.flush()
      case "garbage":
        out.write("this is not json\n")
        return reply("after garbage")
      case "stray":
        send({ jsonrpc: "2.0", id: 999_999_999, result: "to nobody" })
        return reply("after stray")
      case "notify":
        send({ jsonrpc: "2.0", method: "note", params: { from: process.pid, sessionId: msg.params?.sessionId } })
        return reply("notified")
      case "notify-many":
        for (let i = 0; i < msg.params.count; i++)
          out.write(
            `${JSON.stringify({ jsonrpc: "2.0", method: "note", params: { i, pad: "n".repeat(msg.params.bytes) } })}\n`,
          )
        await out.flush()
        return reply("notified")
      case "ask": {
        const id = `ask-${++nextAsk}`
        const answer = new Promise((r) => asked.set(id, r))
        send({ jsonrpc: "2.0", id, method: "client/question", params: { q: msg.params?.q } })
        return reply({ answer: await answer })
      }
      case "ask-many":
        for (let i = 0; i < msg.params.n; i++)
          out.write(
            JSON.stringify({ jsonrpc: "2.0", id: `many-${++nextAsk}`, method: "client/question", params: { i } }) +
              "\n",
          )
        await out.flush()
        return reply("asked")
      case "ignore":
        return
      case "initialize":
        if (msg.params?.refuse)
          return send({ jsonrpc: "2.0", id: msg.id, error: { code: -32602, message: "initialize refused" } })
        if (msg.params?.crash) return process.exit(3)
        if (msg.params?.hold) {
          heldInitialize.push(msg.id)
          return send({ jsonrpc: "2.0", method: "holding", params: { id: msg.id } })
        }
        return reply({ echo: msg.params ?? null, method: msg.method, pid: process.pid })
      case "hold":
        held.add(msg.id)
        return send({ jsonrpc: "2.0", method: "holding", params: { id: msg.id } })
      case "log":
        for (const l of msg.params.lines) process.stderr.write(l + "\n")
        return reply("logged")
      default:
        return reply({
          echo: msg.params ?? null,
          method: msg.method,
          pid: process.pid,
          instance: Number(process.env.SLOTBUS_INSTANCE),
        })
    }
  }
  const decoder = new TextDecoder()
  let rest = ""
  if (mode === "read-on-usr1") {
    const { promise, resolve } = Promise.withResolvers<void>()
    process.once("SIGUSR1", () => resolve())
    send({ jsonrpc: "2.0", method: "waiting-for-usr1", params: { pid: process.pid } })
    await promise
  }
  for await (const chunk of Bun.stdin.stream()) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
    rest = lines.pop()!
    for (const line of lines) if (line.trim()) void handle(JSON.parse(line))
  }
}
