import { describe, expect, test } from "bun:test"
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BusErrorCode, ListenError, parseAddress } from "../../src/stdio/index.ts"
import { rejection, until } from "../support/helpers.ts"
import { clientOf, rawClient, withBus, workerConfig } from "../support/stdio/stdio.ts"

const sockPath = () => join(tmpdir(), `slotbus-stdio-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)

describe("stdio bus listeners", () => {
  test.each([
    ["unix:/tmp/a.sock", { kind: "unix", path: "/tmp/a.sock" }],
    ["tcp:127.0.0.1:9800", { kind: "tcp", hostname: "127.0.0.1", port: 9800 }],
    ["tcp:0", { kind: "tcp", hostname: "127.0.0.1", port: 0 }],
    ["localhost:80", { kind: "tcp", hostname: "localhost", port: 80 }],
  ])("%s is parsed", (spec, address) => {
    expect(parseAddress(spec)).toEqual(address as never)
  })

  test.each(["unix:", "tcp:host", "nonsense", "tcp:1:99999"])("%s is refused with the forms that work", (spec) => {
    expect(() => parseAddress(spec)).toThrow(/unix:|tcp:/)
  })

  test("clients on TCP and on a unix socket using the same ids each get their own answers; clientCount follows them", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const path = sockPath()
      const tcp = await bus.listen("tcp:127.0.0.1:0")
      const unix = await bus.listen(`unix:${path}`)
      expect(tcp.address.kind === "tcp" && tcp.address.port).toBeGreaterThan(0)
      const a = await clientOf(tcp)
      const b = await rawClient(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      await until(() => bus.clientCount === 3, "three clients")
      expect(unix.clientCount).toBe(2)
      for (let id = 1; id <= 20; id++) {
        a.send(JSON.stringify({ jsonrpc: "2.0", id, method: "who", params: { from: "a", id } }))
        b.send(JSON.stringify({ jsonrpc: "2.0", id, method: "who", params: { from: "b", id } }))
        c.send(JSON.stringify({ jsonrpc: "2.0", id: String(id), method: "who", params: { from: "c", id } }))
      }
      for (const [client, name] of [
        [a, "a"],
        [b, "b"],
        [c, "c"],
      ] as const) {
        await until(() => client.received.length === 20, `20 answers for ${name}`)
        expect(client.received.map((m) => m.result.echo.from)).toEqual(Array(20).fill(name))
        for (const m of client.received)
          expect(m.id).toEqual(name === "c" ? String(m.result.echo.id) : m.result.echo.id)
        // one connection is one session: all its requests went to one instance
        expect(new Set(client.received.map((m) => m.result.pid)).size).toBe(1)
      }
      a.close()
      await a.closed
      await until(() => bus.clientCount === 2, "a gone")
      b.close()
      c.close()
      await until(() => bus.clientCount === 0, "all gone")
    })
  })

  test("malformed JSON from a client is answered with a parse error, counted, and the client keeps working", async () => {
    await withBus(workerConfig(), async (bus) => {
      const l = await bus.listen("tcp:127.0.0.1:0")
      const a = await clientOf(l)
      a.send("{oops")
      a.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "after" }))
      const err = await a.waitFor((m) => m.error, "the parse error")
      expect(err).toEqual({
        jsonrpc: "2.0",
        id: null,
        error: { code: BusErrorCode.ParseError, message: expect.any(String) },
      })
      expect((await a.waitFor((m) => m.id === 1, "the answer")).result.method).toBe("after")
      expect(bus.stats().routingErrors).toBe(1)
      a.close()
    })
  })

  test("a worker's notifications and requests go to the client whose session is on that worker, and its answer goes back", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const a = await rawClient(`unix:${path}`)
      a.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "notify" }))
      expect((await a.waitFor((m) => m.method === "note", "the note")).params.from).toBeGreaterThan(0)
      a.send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ask", params: { q: "?" } }))
      const q = await a.waitFor((m) => m.method === "client/question", "the question")
      a.send(JSON.stringify({ jsonrpc: "2.0", id: q.id, result: "yes" }))
      expect((await a.waitFor((m) => m.id === 2, "the answer")).result).toEqual({ answer: "yes" })
      a.close()
    })
  })

  test("a client line past max_input_buffer is refused and that client disconnected; others are untouched", async () => {
    await withBus(workerConfig("echo", 1, { max_input_buffer: 1024 }), async (bus) => {
      const l = await bus.listen("tcp:127.0.0.1:0")
      const a = await clientOf(l)
      const b = await clientOf(l)
      a.send("x".repeat(5000))
      await a.closed
      expect(a.received[0].error.message).toContain("max_input_buffer")
      b.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "fine" }))
      expect((await b.waitFor((m) => m.id === 1, "b's answer")).result.method).toBe("fine")
      b.close()
    })
  })

  test("stopping the bus closes its listeners, disconnects clients and removes the socket file", async () => {
    const path = sockPath()
    let client
    await withBus(workerConfig(), async (bus) => {
      await bus.listen(`unix:${path}`)
      client = await rawClient(`unix:${path}`)
      expect(existsSync(path)).toBe(true)
    })
    await client!.closed
    expect(existsSync(path)).toBe(false)
  })
})

// listen("unix:PATH") unlinked whatever was at PATH when a connect to it failed: a regular file, a symlink (not its
// target), a directory's connect error counted as stale too
test("listen on a unix path holding a file, a symlink or a directory refuses with ListenError and removes nothing; a live socket is refused, a dead one's file replaced", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stdio-claim-"))
  try {
    await withBus(workerConfig(), async (bus) => {
      const file = join(dir, "notes.txt")
      writeFileSync(file, "keep me")
      const link = join(dir, "link.sock")
      symlinkSync(file, link)
      const sub = join(dir, "sub")
      mkdirSync(sub)
      for (const [path, what] of [
        [file, "a regular file"],
        [link, "a symbolic link"],
        [sub, "a directory"],
      ] as const) {
        const e = await rejection(bus.listen(`unix:${path}`))
        expect(e).toBeInstanceOf(ListenError)
        expect((e as Error).message).toContain(`${path} exists and is not a socket but ${what}`)
      }
      expect(readFileSync(file, "utf8")).toBe("keep me")
      expect(lstatSync(link).isSymbolicLink()).toBe(true)
      expect(lstatSync(sub).isDirectory()).toBe(true)

      const live = join(dir, "live.sock")
      await bus.listen(`unix:${live}`)
      const taken = await rejection(bus.listen(`unix:${live}`))
      expect(taken).toBeInstanceOf(ListenError)
      expect((taken as Error).message).toContain(`already listens on ${live}`)
      const c = await rawClient(`unix:${live}`) // the first listener still serves
      c.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "still" }))
      expect((await c.waitFor((m) => m.id === 1, "an answer")).result.method).toBe("still")
      c.close()

      // a listener killed with -9 leaves its socket file: connect is refused, so it is taken over
      const stale = join(dir, "stale.sock")
      const dead = Bun.spawn(
        [
          process.execPath,
          "-e",
          `Bun.listen({ unix: ${JSON.stringify(stale)}, socket: { data() {} } }); console.log("up")`,
        ],
        { stdout: "pipe" },
      )
      await dead.stdout.getReader().read()
      dead.kill("SIGKILL")
      await dead.exited
      expect(lstatSync(stale).isSocket()).toBe(true)
      await bus.listen(`unix:${stale}`)
      const d = await rawClient(`unix:${stale}`)
      d.send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "taken" }))
      expect((await d.waitFor((m) => m.id === 2, "an answer")).result.method).toBe("taken")
      d.close()
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

describe("stdio bus listeners while stopping", () => {
  test("stop() answers a connected client's in-flight request before disconnecting it, and refuses new connections", async () => {
    const path = sockPath()
    const { StdioBus } = await import("../../src/stdio/index.ts")
    const bus = StdioBus.fromConfig(workerConfig())
    await bus.start()
    try {
      await bus.listen(`unix:${path}`)
      const a = await rawClient(`unix:${path}`)
      a.send(JSON.stringify({ jsonrpc: "2.0", id: "slow", method: "sleep", params: { ms: 300 } }))
      await until(() => bus.stats().pools[0]!.instances[0]!.inFlight === 1, "the request in flight")
      const stopping = bus.stop({ timeoutMs: 5000 })
      await expect(rawClient(`unix:${path}`)).rejects.toBeDefined()
      a.send(JSON.stringify({ jsonrpc: "2.0", id: "late", method: "who" }))
      await a.closed
      expect(a.received.find((m) => m.id === "slow").result).toMatchObject({ slept: 300 })
      expect(a.received.find((m) => m.id === "late").error.code).toBe(BusErrorCode.BusStopping)
      await stopping
    } finally {
      await bus.stop()
    }
  })
})
