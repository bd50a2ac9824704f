// bus.reload(): every instance replaced surge-first under load, with real worker processes (workers/worker.ts).
import { describe, expect, test } from "bun:test"
import { heapStats } from "bun:jsc"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ReplaceError } from "../../src/index.ts"
import { type BusMessage, ReloadError, type StdioBus } from "../../src/stdio/index.ts"
import { alive, until } from "../support/helpers.ts"
import { STDIO_WORKER, rawClient, withBus, workerConfig } from "../support/stdio/stdio.ts"

const SLOTBUS = join(import.meta.dir, "..", "..", "bin", "slotbus.ts")

const pidsOf = (bus: StdioBus) => bus.stats().pools[0]!.instances.map((i) => i.pid)

/** Keeps `loops` callers sending requests (some sleeping, some pinned to a session) until stop(); counts every answer. */
function steadyLoad(bus: StdioBus, loops: number) {
  let running = true
  let sent = 0
  const answers = new Map<number, number>()
  const failures: Error[] = []
  const servedBy = new Set<number>()
  const done = Promise.all(
    Array.from({ length: loops }, async (_, loop) => {
      while (running) {
        const n = ++sent
        const method = n % 5 === 0 ? "sleep" : "echo"
        const params = method === "sleep" ? { ms: 20, tag: n } : { n }
        try {
          const r = (await bus.request(method, params, loop === 0 ? { sessionId: "pinned" } : {})) as {
            pid: number
            echo?: { n: number }
            tag?: number
          }
          const got = r.echo?.n ?? r.tag!
          answers.set(got, (answers.get(got) ?? 0) + 1)
          servedBy.add(r.pid)
        } catch (e) {
          failures.push(e as Error)
        }
      }
    }),
  )
  return {
    answers,
    failures,
    servedBy,
    get sent() {
      return sent
    },
    stop: async () => {
      running = false
      await done
    },
  }
}

describe("stdio bus reload", () => {
  test("two reloads back to back under a steady request loop lose no request, answer each once, and leave only new processes", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const replaced: { pid: number; successor: number }[] = []
      bus.on("worker-replaced", (e) => replaced.push(e))
      const before = pidsOf(bus)
      const load = steadyLoad(bus, 6)
      try {
        await until(() => load.sent > 50, "requests flowing")
        // the second reload is queued behind the first, as `slotbus stdio` does with two SIGHUPs in a row
        await Promise.all([bus.reload(), bus.reload(undefined, { maxSurge: 2 })])
        const after = pidsOf(bus)
        const sentAfter = load.sent
        await until(() => load.sent > sentAfter + 50, "requests flowing after the reloads")
        await load.stop()
        expect(load.failures).toEqual([])
        expect(load.answers.size).toBe(load.sent)
        expect([...load.answers.values()].every((c) => c === 1)).toBe(true)
        expect(replaced).toHaveLength(4)
        const middle = replaced.slice(0, 2).map((r) => r.successor)
        for (const pid of [...before, ...middle]) expect(after).not.toContain(pid)
        for (const pid of [...before, ...middle]) await until(() => !alive(pid), `replaced pid ${pid} to exit`)
        for (const pid of after) expect(load.servedBy).toContain(pid)
        const st = bus.stats()
        expect(st.restarts).toBe(0)
        expect(st.routingErrors).toBe(0)
        expect(st.lateResponses).toBe(0)
        expect(bus.sessionOf("pinned")?.pid).toBeOneOf(after)
        expect(((await bus.request("echo", { last: true })) as { pid: number }).pid).toBeOneOf(after)
      } finally {
        await load.stop()
      }
    })
  }, 60_000)

  test("a successor that exits at start makes reload reject with ReloadError, and the old processes keep serving", async () => {
    const flag = join(tmpdir(), `slotbus-reload-${process.pid}-${Math.random().toString(36).slice(2)}`)
    const config = {
      pools: [
        {
          id: "w",
          command: "sh",
          args: ["-c", `if [ -e '${flag}' ]; then echo 'refusing to start' >&2; exit 1; fi; exec "$0" "$1" echo`],
          instances: 2,
        },
      ],
    }
    config.pools[0]!.args.push(process.execPath, STDIO_WORKER)
    try {
      await withBus(config, async (bus) => {
        const before = pidsOf(bus)
        const load = steadyLoad(bus, 3)
        try {
          // both past their start (the shell checked the flag) before it is set
          await until(() => before.every((pid) => load.servedBy.has(pid)), "both workers serving")
          writeFileSync(flag, "")
          const e = await bus.reload().catch((err: unknown) => err)
          expect(e).toBeInstanceOf(ReloadError)
          expect(e).toMatchObject({ pool: "w", instance: 0 })
          expect((e as ReloadError).reason).toMatch(/exited \(code 1\) before it was ready/)
          expect(pidsOf(bus)).toEqual(before)
          const sent = load.sent
          await until(() => load.sent > sent + 20, "requests flowing after the failed reload")
          await load.stop()
          expect(load.failures).toEqual([])
          for (const pid of before) expect(load.servedBy).toContain(pid)
          expect(bus.stats().restarts).toBe(0)
          expect(bus.stats().pools[0]!.state).toBe("running")
        } finally {
          await load.stop()
        }
      })
    } finally {
      rmSync(flag, { force: true })
    }
  }, 60_000)

  test("a successor that never answers its ping is stopped after readyTimeoutMs and the reload rejects", async () => {
    const flag = join(tmpdir(), `slotbus-reload-${process.pid}-${Math.random().toString(36).slice(2)}`)
    const config = {
      pools: [
        {
          id: "w",
          command: "sh",
          args: [
            "-c",
            `if [ -e '${flag}' ]; then exec "$0" "$1" no-read; fi; exec "$0" "$1" echo`,
            process.execPath,
            STDIO_WORKER,
          ],
        },
      ],
    }
    try {
      await withBus(config, async (bus) => {
        const [before] = pidsOf(bus)
        expect(await bus.request("echo", {})).toMatchObject({ pid: before }) // past its start before the flag is set
        writeFileSync(flag, "")
        const exits: number[] = []
        bus.on("worker-exit", (x) => exits.push(x.pid))
        const e = await bus.reload("w", { readyTimeoutMs: 300 }).catch((err: unknown) => err)
        expect(e).toBeInstanceOf(ReloadError)
        expect((e as ReloadError).reason).toMatch(/not ready within 300 ms/)
        await until(() => exits.length === 1, "the successor stopped")
        expect(alive(exits[0]!)).toBe(false)
        expect(pidsOf(bus)).toEqual([before!])
        expect(await bus.request("echo", {})).toMatchObject({ pid: before })
      })
    } finally {
      rmSync(flag, { force: true })
    }
  }, 30_000)

  test("a successor not ready in time rejects with a ReloadError that is a ReplaceError: pool, pids and reason as data", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stdio-reload-shape-"))
    // the pool's processes serve until the flag exists; a successor started after that never reads
    const script = `if [ -e '${join(dir, "flag")}' ]; then exec "$0" "$1" no-read; fi; exec "$0" "$1" echo`
    const pool = { id: "w", command: "sh", args: ["-c", script, process.execPath, STDIO_WORKER] }
    try {
      await withBus({ pools: [pool] }, async (bus) => {
        const [old] = pidsOf(bus)
        await bus.request("echo", {}) // the first process is past its start before the flag is set
        writeFileSync(join(dir, "flag"), "")
        const e = (await bus.reload("w", { readyTimeoutMs: 300 }).catch((err: unknown) => err)) as ReloadError
        expect(e).toBeInstanceOf(ReloadError)
        expect(e).toBeInstanceOf(ReplaceError)
        const reason = "was not ready within 300 ms (readyTimeoutMs)"
        expect(e).toMatchObject({
          pool: "w",
          instance: 0,
          operation: "reload",
          index: 0,
          pid: old,
          reason,
          oldExit: null,
        })
        expect(e.successor).toBeGreaterThan(0)
        expect(e.successor).not.toBe(old)
        await until(() => !alive(e.successor), "the successor stopped")
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)

  test("the old worker killed while its successor gets ready, then the successor killed: the instance restarts as after a crash", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stdio-reload-crash-"))
    const flag = join(dir, "flag")
    const started = join(dir, "started") // the successor's pid, written as it starts
    const config = {
      pools: [
        {
          id: "w",
          command: "sh",
          args: [
            "-c",
            `if [ -e '${flag}' ]; then rm '${flag}'; echo $$ > '${started}'; exec "$0" "$1" no-read; fi; exec "$0" "$1" echo`,
            process.execPath,
            STDIO_WORKER,
          ],
        },
      ],
    }
    try {
      await withBus(config, async (bus) => {
        const [old] = pidsOf(bus)
        expect(await bus.request("echo", {})).toMatchObject({ pid: old }) // past its start before the flag is set
        const starts: number[] = []
        const exits: number[] = []
        bus.on("worker-start", (x) => starts.push(x.pid))
        bus.on("worker-exit", (x) => exits.push(x.pid))
        writeFileSync(flag, "")
        const reload = bus.reload().catch((err: unknown) => err)
        await until(() => existsSync(started) && readFileSync(started, "utf8").endsWith("\n"), "the successor started")
        const successor = Number(readFileSync(started, "utf8"))
        process.kill(old!, "SIGKILL")
        await until(() => exits.includes(old!), "the old worker's exit")
        process.kill(successor, "SIGKILL")
        const e = (await reload) as ReloadError
        expect(e).toBeInstanceOf(ReloadError)
        expect(e.message).toBe(
          `reload of pool "w" stopped: reload: instance 0's successor (pid ${successor}) exited (killed by SIGKILL) before it was ready; the old process (pid ${old}) exited meanwhile (killed by SIGKILL): the instance restarts as after a crash`,
        )
        await until(() => ![0, old, successor].includes(pidsOf(bus)[0]), "the instance restarted")
        const [next] = pidsOf(bus)
        expect(await bus.request("echo", {})).toMatchObject({ pid: next })
        expect(starts).toEqual([next!]) // the successor never served: never announced
        const st = bus.stats()
        expect(st.restarts).toBe(1)
        expect(st.pools[0]!.state).toBe("running")
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  test("100 reloads whose successor exits at start keep no successor: the bus holds no more processes than before", async () => {
    const flag = join(tmpdir(), `slotbus-reload-${process.pid}-${Math.random().toString(36).slice(2)}`)
    const config = {
      pools: [
        {
          id: "w",
          command: "sh",
          args: ["-c", `if [ -e '${flag}' ]; then exit 1; fi; exec "$0" "$1" echo`, process.execPath, STDIO_WORKER],
        },
      ],
    }
    // what a leaked successor keeps alive: its Subprocess, counted on the heap after a full collection
    const processes = () => {
      Bun.gc(true)
      return heapStats().objectTypeCounts.Subprocess ?? 0
    }
    try {
      await withBus(config, async (bus) => {
        const [before] = pidsOf(bus)
        expect(await bus.request("echo", {})).toMatchObject({ pid: before }) // past its start before the flag is set
        writeFileSync(flag, "")
        const held = processes()
        for (let i = 0; i < 100; i++)
          expect(await bus.reload().catch((err: unknown) => err)).toBeInstanceOf(ReloadError)
        expect(processes()).toBeLessThan(held + 20)
        expect(pidsOf(bus)).toEqual([before!])
        expect(await bus.request("echo", {})).toMatchObject({ pid: before })
      })
    } finally {
      rmSync(flag, { force: true })
    }
  }, 60_000)

  test('with initialize: "replay" a session moves to the successor with its handshake already answered there', async () => {
    const config = {
      pools: [{ id: "w", command: process.execPath, args: [STDIO_WORKER, "echo"], initialize: "replay" as const }],
    }
    await withBus(config, async (bus) => {
      const got: BusMessage[] = []
      void (async () => {
        for await (const m of bus.messages()) got.push(m)
      })()
      const seenBy = (pid: number) =>
        got
          .map((m) => m.message)
          .filter((m) => m.method === "seen" && (m.params as { pid: number }).pid === pid)
          .map((m) => (m.params as { method: string }).method)
      await bus.request("initialize", { session: "A" }, { sessionId: "A" })
      await bus.notify("notifications/initialized", undefined, { sessionId: "A" })
      const [old] = pidsOf(bus)
      await bus.reload()
      const [next] = pidsOf(bus)
      expect(next).not.toBe(old)
      // answered before the successor took the session: nothing is replayed on the session's next message
      await until(() => seenBy(next!).length === 1, "the successor seeing the replayed initialized")
      const out = bus.stats().messagesOut
      expect(await bus.request("echo", { n: 1 }, { sessionId: "A" })).toMatchObject({ pid: next })
      expect(bus.stats().messagesOut).toBe(out + 1)
      await bus.notify("note", undefined, { sessionId: "A" })
      await until(() => seenBy(next!).length === 2, "the successor seeing the note")
      expect(seenBy(next!)).toEqual(["notifications/initialized", "note"])
    })
  }, 30_000)

  test("reload refuses an unknown pool and bad options with a clear error", async () => {
    await withBus(workerConfig("echo", 1), async (bus) => {
      await expect(bus.reload("nope")).rejects.toThrow(/no such pool; pools: w/)
      await expect(bus.reload("w", { maxSurge: 0 })).rejects.toThrow(/maxSurge/)
      await expect(bus.reload("w", { surge: 1 } as never)).rejects.toThrow(/surge/)
    })
  })

  test("SIGHUP to slotbus stdio --config replaces every worker while a client keeps its connection", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stdio-reload-"))
    const file = join(dir, "bus.json")
    const sock = join(dir, "bus.sock")
    writeFileSync(
      file,
      JSON.stringify({ pools: [{ id: "w", command: process.execPath, args: [STDIO_WORKER], instances: 2 }] }),
    )
    const proc = Bun.spawn([process.execPath, SLOTBUS, "stdio", "--config", file, "--listen", `unix:${sock}`], {
      stdout: "ignore",
      stderr: "pipe",
    })
    let err = ""
    void (async () => {
      for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk)
    })()
    try {
      await until(() => err.includes("listening on"), "the bus listening")
      const client = await rawClient(`unix:${sock}`)
      try {
        const ask = async (id: number) => {
          client.send(JSON.stringify({ jsonrpc: "2.0", id, method: "echo", sessionId: `s${id}` }))
          return (await client.waitFor((m) => m.id === id, `answer ${id}`)).result.pid as number
        }
        const before = new Set([await ask(1), await ask(2), await ask(3), await ask(4)])
        proc.kill("SIGHUP")
        await until(() => err.includes("reloaded 2 workers"), "the reload to finish", 20_000)
        expect(err.match(/replaced by pid/g)).toHaveLength(2)
        for (const pid of before) await until(() => !alive(pid), `old pid ${pid} to exit`)
        const after = await ask(5)
        expect(before.has(after)).toBe(false)
      } finally {
        client.close()
      }
    } finally {
      proc.kill("SIGTERM")
      await proc.exited
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)

  test("an MCP server (server-everything) is reloaded: it answers the ping, gets the session's handshake, and the session goes on", async () => {
    const everything = join(import.meta.dir, "..", "..", "node_modules", "@modelcontextprotocol", "server-everything")
    const config = {
      pools: [
        {
          id: "everything",
          command: process.execPath,
          args: [join(everything, "dist", "index.js"), "stdio"],
          initialize: "replay" as const,
        },
      ],
    }
    await withBus(config, async (bus) => {
      const init = {
        protocolVersion: "2025-06-18",
        capabilities: { sampling: {} },
        clientInfo: { name: "t", version: "1" },
      }
      await bus.request("initialize", init, { sessionId: "s" })
      await bus.notify("notifications/initialized", undefined, { sessionId: "s" })
      const [old] = pidsOf(bus)
      await bus.reload(undefined, { readyTimeoutMs: 20_000 })
      const [next] = pidsOf(bus)
      expect(next).not.toBe(old)
      await until(() => !alive(old!), "the old server to exit")
      // registered only once a client that declared sampling sent notifications/initialized: the whole handshake
      const out = bus.stats().messagesOut
      const tools = (await bus.request("tools/list", {}, { sessionId: "s" })) as { tools: { name: string }[] }
      expect(tools.tools.map((t) => t.name)).toContain("trigger-sampling-request")
      expect(bus.stats().messagesOut).toBe(out + 1) // nothing replayed on the way: it was done before the swap
      expect(bus.stats().restarts).toBe(0)
    })
  }, 60_000)
})
