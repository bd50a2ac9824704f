// Socket clients cannot grow the bus without bound. The bus runs as its own process (`slotbus stdio --listen`),
// and its resident memory is read from /proc by this one, so what the test itself buffers does not count.
import { describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Socket } from "bun"
import { REPO, spawn, until, type Child } from "../support/helpers.ts"
import { rawClient, withBus, workerConfig } from "../support/stdio/stdio.ts"
import type { LimitsConfig } from "../../src/stdio/index.ts"

const MiB = 1024 * 1024

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (!m) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}

/** `slotbus stdio --listen unix:…` in its own process, always ended. */
async function withBusProcess(
  mode: string,
  limits: Partial<LimitsConfig>,
  fn: (path: string, bus: Child) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "stdio-mem-"))
  const path = join(dir, "bus.sock")
  // drain_timeout_sec 0: SIGTERM ends the bus (and its workers) at once, whatever is still pending
  writeFileSync(join(dir, "bus.json"), JSON.stringify(workerConfig(mode, 1, { ...limits, drain_timeout_sec: 0 })))
  const bus = spawn([
    process.execPath,
    join(REPO, "bin", "slotbus.ts"),
    "stdio",
    "--config",
    join(dir, "bus.json"),
    "--listen",
    `unix:${path}`,
  ])
  try {
    await until(() => bus.stderr.includes("listening on"), "the bus listening")
    await fn(path, bus)
  } finally {
    await bus.stop(5000)
    rmSync(dir, { recursive: true, force: true })
  }
}

interface Writer {
  socket: Socket<undefined>
  closed: boolean
  /** Writes all of `bytes` (waiting for the socket to drain); false once the bus closed the connection or `until` passed. */
  write(bytes: Uint8Array, until: number): Promise<boolean>
}

async function writer(path: string): Promise<Writer> {
  let drained: (() => void) | null = null
  const w: Writer = {
    socket: null!,
    closed: false,
    async write(bytes, deadline) {
      let at = 0
      while (at < bytes.length) {
        if (w.closed || performance.now() > deadline) return false
        const n = w.socket.write(bytes.subarray(at))
        if (n < 0) return false
        at += n
        if (at < bytes.length) await Promise.race([new Promise<void>((r) => (drained = r)), Bun.sleep(100)])
      }
      return true
    },
  }
  w.socket = await Bun.connect({
    unix: path,
    socket: {
      data() {},
      drain: () => drained?.(),
      close: () => void (w.closed = true),
      error: () => void (w.closed = true),
    },
  })
  return w
}

describe("stdio bus memory under hostile clients", () => {
  test("300 MB sent at a worker that does not read: the bus stops reading the client, and its memory stays bounded", async () => {
    await withBusProcess("no-read", { max_output_queue: MiB }, async (path, bus) => {
      const line = new TextEncoder().encode(
        JSON.stringify({ jsonrpc: "2.0", id: 1, method: "x", params: { pad: "p".repeat(64 * 1024) } }) + "\n",
      )
      const w = await writer(path)
      try {
        await Bun.sleep(200)
        const rss0 = rssBytes(bus.pid)
        let sent = 0
        const deadline = performance.now() + 15_000
        // Offer 300 MB; stop once the bus has taken nothing for a while (it paused us) or cut us off.
        while (sent < 300e6) {
          const progress = w.write(line, deadline)
          const stalled = await Promise.race([progress.then((ok) => !ok), Bun.sleep(1500).then(() => true)])
          if (stalled) break
          sent += line.length
        }
        const growth = rssBytes(bus.pid) - rss0
        console.log(`offered ${(sent / MiB).toFixed(1)} MiB; bus RSS grew ${(growth / MiB).toFixed(1)} MiB`)
        expect(growth).toBeLessThan(75e6)
      } finally {
        w.socket.terminate()
      }
    })
  }, 30_000)

  test("150 clients each holding a 1 MB incomplete line: the bus caps incomplete lines, cutting clients off past it", async () => {
    await withBusProcess("echo", {}, async (path, bus) => {
      const writers: Writer[] = []
      try {
        const rss0 = rssBytes(bus.pid)
        const partial = new Uint8Array(1_000_000).fill(0x78)
        for (let i = 0; i < 150; i++) writers.push(await writer(path))
        const deadline = performance.now() + 15_000
        await Promise.all(writers.map((w) => w.write(partial, deadline)))
        await Bun.sleep(300)
        const growth = rssBytes(bus.pid) - rss0
        const cut = writers.filter((w) => w.closed).length
        console.log(`bus RSS grew ${(growth / MiB).toFixed(1)} MiB; ${cut} of 150 clients cut off`)
        // 150 MB held before; now the 16 MiB cap plus what the refused clients had in flight (garbage not yet collected)
        expect(growth).toBeLessThan(90 * MiB)
        expect(cut).toBeGreaterThan(0)
      } finally {
        for (const w of writers) w.socket.terminate()
      }
    })
  }, 30_000)
})

describe("stdio listener caps", () => {
  test("past maxClients a new connection is refused with an error; a client leaving makes room", async () => {
    await withBus(workerConfig(), async (bus) => {
      const path = join(tmpdir(), `slotbus-caps-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
      await bus.listen(`unix:${path}`, { maxClients: 2 })
      const a = await rawClient(`unix:${path}`)
      const b = await rawClient(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      try {
        await c.closed
        expect(c.received[0].error.message).toContain("maxClients")
        a.close()
        await until(() => bus.clientCount === 1, "a gone")
        const d = await rawClient(`unix:${path}`)
        d.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "hi" }))
        expect((await d.waitFor((m) => m.id === 1, "d served")).result.method).toBe("hi")
        d.close()
      } finally {
        for (const x of [a, b, c]) x.close()
      }
    })
  })

  test("a client that never reads its answers is cut off once more than max_output_queue of them wait (75 MB asked for)", async () => {
    await withBus(workerConfig("echo", 1, { max_output_queue: MiB }), async (bus) => {
      const path = join(tmpdir(), `slotbus-caps-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
      await bus.listen(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      try {
        await until(() => bus.clientCount === 1, "the client attached")
        c.pause()
        let text = ""
        for (let id = 1; id <= 300; id++)
          text += `${JSON.stringify({ jsonrpc: "2.0", id, method: "big", params: { bytes: 256 * 1024 } })}\n`
        c.write(text)
        await until(() => bus.clientCount === 0, "the bus cut the client off", 20_000)
      } finally {
        c.close()
      }
    })
  }, 30_000)

  test("a client that leaves a line incomplete past lineTimeoutMs is cut off; whole lines keep a client alive", async () => {
    await withBus(workerConfig(), async (bus) => {
      const path = join(tmpdir(), `slotbus-caps-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
      await bus.listen(`unix:${path}`, { lineTimeoutMs: 200 })
      const slow = await rawClient(`unix:${path}`)
      const fine = await rawClient(`unix:${path}`)
      try {
        slow.write(`{"jsonrpc":"2.0","id":1,"method":"never ends`)
        await slow.closed
        expect(slow.received.at(-1).error.message).toContain("lineTimeoutMs")
        for (let i = 0; i < 5; i++) {
          fine.send(JSON.stringify({ jsonrpc: "2.0", id: i, method: "tick" }))
          await fine.waitFor((m) => m.id === i, `tick ${i}`)
          await Bun.sleep(60)
        }
        expect(bus.clientCount).toBe(1)
      } finally {
        slow.close()
        fine.close()
      }
    })
  })

  test.each([[{ maxClients: 0 }], [{ maxPartialBytes: -1 }], [{ lineTimeoutMs: Number.NaN }], [{ maxClients: 1.5 }]])(
    "listen(%p) is refused with a RangeError",
    async (options) => {
      await withBus(workerConfig(), async (bus) => {
        await expect(bus.listen("tcp:127.0.0.1:0", options)).rejects.toBeInstanceOf(RangeError)
      })
    },
  )
})

describe("stdio mode memory", () => {
  // every answer was written to stdout at once: a client that did not read them had the bus buffer them all
  test("`slotbus stdio` without --listen stops taking lines while its answers wait unread on stdout: up to 190 MB of answers asked, memory bounded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stdio-mem-"))
    writeFileSync(
      join(dir, "bus.json"),
      JSON.stringify(workerConfig("echo", 1, { max_output_queue: 64 * 1024, drain_timeout_sec: 0 })),
    )
    // its stdout is a pipe nobody reads (a FIFO opened read-write: the test holds the reading end, unread)
    execFileSync("mkfifo", [join(dir, "out")])
    const unread = openSync(join(dir, "out"), "r+")
    const bus = Bun.spawn(
      [process.execPath, join(REPO, "bin", "slotbus.ts"), "stdio", "--config", join(dir, "bus.json"), "--quiet"],
      { stdin: "pipe", stdout: unread, stderr: "ignore" },
    )
    try {
      await Bun.sleep(500)
      const rss0 = rssBytes(bus.pid)
      const ask = (id: number) =>
        JSON.stringify({ jsonrpc: "2.0", id, method: "big", params: { bytes: 64 * 1024, pad: "p".repeat(4096) } }) +
        "\n"
      // written on whether or not the bus takes them (they wait in this process): the bus may take what it can hold
      let asked = 0
      const deadline = performance.now() + 8_000
      while (asked < 3000 && performance.now() < deadline) {
        bus.stdin.write(ask(asked++))
        await Promise.race([Promise.resolve(bus.stdin.flush()), Bun.sleep(200)])
      }
      await Bun.sleep(1000) // answers to what it took
      const growth = rssBytes(bus.pid) - rss0
      console.log(`stdout unread: ${asked} answers of 64 KiB asked; bus RSS grew ${(growth / MiB).toFixed(1)} MiB`)
      expect(growth).toBeLessThan(75e6)
    } finally {
      bus.kill("SIGTERM")
      if ((await Promise.race([bus.exited, Bun.sleep(5000).then(() => "late")])) === "late") bus.kill("SIGKILL")
      await bus.exited
      closeSync(unread)
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)

  test("`slotbus stdio` without --listen stops reading its stdin while a worker does not read: 300 MB offered, memory bounded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stdio-mem-"))
    writeFileSync(
      join(dir, "bus.json"),
      JSON.stringify(workerConfig("no-read", 1, { max_output_queue: MiB, drain_timeout_sec: 0 })),
    )
    const bus = Bun.spawn(
      [process.execPath, join(REPO, "bin", "slotbus.ts"), "stdio", "--config", join(dir, "bus.json"), "--quiet"],
      { stdin: "pipe", stdout: "ignore", stderr: "ignore" },
    )
    try {
      await Bun.sleep(500)
      const rss0 = rssBytes(bus.pid)
      const line = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "x", params: { pad: "p".repeat(64 * 1024) } }) + "\n"
      let sent = 0
      const deadline = performance.now() + 15_000
      while (sent < 300e6 && performance.now() < deadline) {
        bus.stdin.write(line)
        const flushed = await Promise.race([
          Promise.resolve(bus.stdin.flush()).then(() => true),
          Bun.sleep(1500).then(() => false),
        ])
        if (!flushed) break // the bus stopped reading
        sent += line.length
      }
      const growth = rssBytes(bus.pid) - rss0
      console.log(`stdin: offered ${(sent / MiB).toFixed(1)} MiB; bus RSS grew ${(growth / MiB).toFixed(1)} MiB`)
      expect(growth).toBeLessThan(75e6)
    } finally {
      bus.kill("SIGTERM") // the bus stops its worker; SIGKILL only if it does not exit
      if ((await Promise.race([bus.exited, Bun.sleep(5000).then(() => "late")])) === "late") bus.kill("SIGKILL")
      await bus.exited
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})

describe("`slotbus stdio connect` memory", () => {
  /** `slotbus stdio connect unix:…` to the bus at `path`: its stdin a pipe, its stdout `stdout`. */
  const connectTo = (path: string, stdout: number | "ignore" = "ignore") =>
    Bun.spawn([process.execPath, join(REPO, "bin", "slotbus.ts"), "stdio", "connect", `unix:${path}`], {
      stdin: "pipe",
      stdout,
      stderr: "ignore",
    })
  const ended = async (p: ReturnType<typeof connectTo>) => {
    p.kill("SIGKILL")
    await p.exited
  }

  // it wrote every answer to its stdout at once and kept reading the socket: its reader's slowness was its memory's
  test("connect stops reading the bus while its stdout is unread: 120 MB of answers asked, its memory bounded", async () => {
    // Each answer is a quarter of its request, so the answers to what the bus has taken (at most max_output_queue of
    // lines waiting for the worker) stay under the max_output_queue past which the bus drops a client that does not
    // read: it paces this one instead, and only connect's pacing is measured.
    await withBusProcess("echo", {}, async (path) => {
      const dir = mkdtempSync(join(tmpdir(), "stdio-mem-"))
      execFileSync("mkfifo", [join(dir, "out")])
      const unread = openSync(join(dir, "out"), "r+") // the reading end, held and never read
      const connect = connectTo(path, unread)
      try {
        await Bun.sleep(500)
        const rss0 = rssBytes(connect.pid)
        const ask = (id: number) =>
          JSON.stringify({
            jsonrpc: "2.0",
            id,
            method: "big",
            params: { bytes: 16 * 1024, pad: "p".repeat(64 * 1024) },
          }) + "\n"
        // written while connect takes them; once it has taken nothing for a while (it paused), the asking stops
        let asked = 0
        const deadline = performance.now() + 15_000
        while (asked < 7500 && performance.now() < deadline) {
          connect.stdin.write(ask(asked++))
          const flushed = await Promise.race([
            Promise.resolve(connect.stdin.flush()).then(() => true),
            Bun.sleep(1500).then(() => false),
          ])
          if (!flushed) break
        }
        await Bun.sleep(1000) // answers to what it took
        expect(connect.exitCode).toBeNull() // still connected: the bus paced it, not dropped it
        const growth = rssBytes(connect.pid) - rss0
        console.log(
          `connect's stdout unread: ${asked} answers of 16 KiB asked; its RSS grew ${(growth / MiB).toFixed(1)} MiB`,
        )
        expect(growth).toBeLessThan(75e6)
      } finally {
        await ended(connect)
        closeSync(unread)
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }, 30_000)

  // it read its stdin on and held what the socket did not take: a worker's slowness was its memory's
  test("connect stops reading its stdin while the bus does not read: 300 MB offered, its memory bounded", async () => {
    await withBusProcess("no-read", { max_output_queue: MiB }, async (path) => {
      const connect = connectTo(path)
      try {
        await Bun.sleep(500)
        const rss0 = rssBytes(connect.pid)
        const line =
          JSON.stringify({ jsonrpc: "2.0", id: 1, method: "x", params: { pad: "p".repeat(64 * 1024) } }) + "\n"
        let sent = 0
        const deadline = performance.now() + 15_000
        while (sent < 300e6 && performance.now() < deadline) {
          connect.stdin.write(line)
          const flushed = await Promise.race([
            Promise.resolve(connect.stdin.flush()).then(() => true),
            Bun.sleep(1500).then(() => false),
          ])
          if (!flushed) break // connect stopped reading
          sent += line.length
        }
        const growth = rssBytes(connect.pid) - rss0
        console.log(
          `connect's stdin: offered ${(sent / MiB).toFixed(1)} MiB; its RSS grew ${(growth / MiB).toFixed(1)} MiB`,
        )
        expect(growth).toBeLessThan(75e6)
      } finally {
        await ended(connect)
      }
    })
  }, 30_000)
})
