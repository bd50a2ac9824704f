import { describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  PoolFailedError,
  ReplaceError,
  SlotBus,
  Supervisor,
  SupervisorError,
  splitCommand,
  superviseWorkers,
  type ExitInfo,
} from "../../../src/index.ts"
import { alive, busName, ECHO_WORKER } from "../../support/helpers.ts"

const bun = process.execPath
const script = (code: string) => [bun, "-e", code]
async function until(cond: () => boolean, what: string, ms = 10_000) {
  const end = performance.now() + ms
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(10)
  }
}

describe("Supervisor", () => {
  test("an instance that exits unasked is restarted with doubling backoff, and every step is an event", async () => {
    const sup = new Supervisor({
      command: script("setTimeout(() => process.exit(2), 30)"),
      restart: {
        maxRestarts: 3,
        windowMs: 60_000,
        backoffInitialMs: 20,
      },
      stdout: "ignore",
    })
    const events: string[] = []
    sup.on("start", (i) => events.push(`start ${i.index}`))
    sup.on("exit", (i, e) => events.push(`exit ${i.index} ${e.code} ${e.expected}`))
    sup.on("restart", (i, r) => events.push(`restart ${i.index} ${r.delayMs}`))
    const failed = new Promise((r) => sup.on("failed", r))
    sup.start()
    expect(sup.state).toBe("running")
    expect(await failed).toMatchObject({
      crashes: 4,
      restarts: 3,
      windowMs: 60_000,
      reason: expect.stringContaining(
        "4 crashes within restart.windowMs (60000 ms), more than restart.maxRestarts (3); 3 crash restarts in all",
      ),
    })
    expect(events).toEqual([
      "start 0",
      "exit 0 2 false",
      "restart 0 20",
      "start 0",
      "exit 0 2 false",
      "restart 0 40",
      "start 0",
      "exit 0 2 false",
      "restart 0 80",
      "start 0",
      "exit 0 2 false",
    ])
    expect(sup.state).toBe("failed")
    expect(sup.failureReason).toContain("more than restart.maxRestarts (3)")
    expect(sup.restarts).toBe(3)
    expect(sup.instances[0]!.restarts).toBe(3)
    expect(sup.instances[0]!.state).toBe("down")
    await sup.stop()
    expect(sup.state).toBe("stopped") // a stopped pool takes its failure with it
    expect(sup.failureReason).toBeNull()
  })

  test("past its intensity the pool keeps its healthy instances running, and runs again after a window without crashes", async () => {
    const mark = join(tmpdir(), `sup-mark-${process.pid}-${Date.now()}`)
    const sup = new Supervisor({
      // instance 1 crashes only in its first two lives (a marker file counts them), instance 0 never
      command: script(
        "const f = process.env.MARK; const n = Number(require('fs').existsSync(f) ? require('fs').readFileSync(f, 'utf8') : 0); if (process.env.SLOTBUS_INSTANCE === '1' && n < 2) { require('fs').writeFileSync(f, String(n + 1)); process.exit(1) } setInterval(() => {}, 1e6)",
      ),
      env: { MARK: mark },
      instances: 2,
      restart: {
        maxRestarts: 1,
        // two crashes of a fresh bun within the window: 300 ms held on a quiet machine, not under load (each life
        // took longer, so the pool never gave up and bun's 5 s ended the test)
        windowMs: 3_000,
        backoffInitialMs: 1,
      },
      killGraceMs: 500,
    })
    const events: string[] = []
    sup.on("failed", () => events.push("failed"))
    sup.on("recovered", (r) => events.push(`recovered ${r.restarted}`))
    sup.start()
    try {
      const healthy = sup.instances[0]!.pid
      await until(() => events.includes("failed"), "the pool to give up", 30_000)
      expect(sup.instances[1]!.state).toBe("down")
      expect(alive(healthy)).toBe(true) // before: the healthy instance was stopped with the crashing one
      await until(() => events.includes("recovered 1"), "the pool to run again", 30_000)
      expect(sup.state).toBe("running")
      expect(sup.failureReason).toBeNull()
      await until(() => sup.runningCount === 2, "both instances running", 30_000)
      expect(sup.instances[0]!.pid).toBe(healthy)
    } finally {
      await sup.stop({ killGraceMs: 0 })
      rmSync(mark, { force: true })
    }
  }, 120_000)

  test('onGiveUp: "stop-all" stops the healthy instances too (OTP: the supervisor gives up as a whole)', async () => {
    const sup = new Supervisor({
      command: script("if (process.env.SLOTBUS_INSTANCE === '1') process.exit(1); setInterval(() => {}, 1e6)"),
      instances: 2,
      restart: {
        maxRestarts: 1,
        backoffInitialMs: 1,
      },
      killGraceMs: 500,
      onGiveUp: "stop-all",
    })
    const failed = new Promise((r) => sup.on("failed", r))
    sup.start()
    const healthy = sup.instances[0]!.pid
    await failed
    await until(() => !alive(healthy), "the healthy instance to be stopped")
    expect(sup.runningCount).toBe(0)
    await sup.stop()
  })

  test("kill() is asked for: the instance is restarted at once, never counted as a crash nor waiting a backoff", async () => {
    const sup = new Supervisor({
      command: script("setInterval(() => {}, 1e6)"),
      instances: 2,
      restart: {
        maxRestarts: 1,
        backoffInitialMs: 60_000, // a crash would wait a minute
      },
    })
    const causes: string[] = []
    sup.on("exit", (_i, e) => causes.push(e.cause))
    sup.start()
    try {
      for (let round = 0; round < 6; round++) {
        const before = sup.instances[round % 2]!.pid
        sup.kill(round % 2)
        await until(() => ![0, before].includes(sup.instances[round % 2]!.pid), "the killed instance back")
      }
      expect(causes).toEqual(["kill", "kill", "kill", "kill", "kill", "kill"])
      expect(sup.state).toBe("running") // six kills with maxRestarts 1: before, the pool gave up at the second
      expect(sup.restarts).toBe(0)
      expect(sup.replacements.kill).toBe(6)
    } finally {
      await sup.stop({ killGraceMs: 0 })
    }
  })

  test("the old process killed while its successor gets ready, and the successor then not ready: the instance restarts as after a crash", async () => {
    let failReady: ((e: Error) => void) | null = null
    const sup = new Supervisor({
      command: script("setInterval(() => {}, 1e6)"),
      restart: {
        backoffInitialMs: 20,
      },
      ready: () => new Promise((_, reject) => (failReady = reject)),
    })
    const events: string[] = []
    sup.on("start", (i) => events.push(`start ${i.pid}`))
    sup.on("exit", (_i, e) => events.push(`exit ${e.pid} ${e.cause}`))
    sup.on("restart", (_i, r) => events.push(`restart ${r.recentRestarts}`))
    sup.start()
    try {
      const old = sup.instances[0]!.pid
      const reload = sup.reload().catch((e: unknown) => e)
      await until(() => failReady !== null, "the successor getting ready")
      process.kill(old, "SIGKILL")
      await until(() => events.includes(`exit ${old} crash`), "the old process's exit")
      failReady!(new Error("failed its ready check"))
      const err = (await reload) as ReplaceError
      expect(err).toBeInstanceOf(ReplaceError)
      expect(err.message).toMatch(
        new RegExp(
          `^reload: instance 0's successor \\(pid ${err.successor}\\) failed its ready check; the old process \\(pid ${old}\\) exited meanwhile \\(killed by SIGKILL\\): the instance restarts as after a crash$`,
        ),
      )
      await until(() => sup.runningCount === 1, "the instance back")
      const now = sup.instances[0]!.pid
      expect([old, err.successor]).not.toContain(now)
      expect(sup.restarts).toBe(1)
      expect(sup.state).toBe("running")
      await until(() => events.includes(`exit ${err.successor} stop`), "the successor's exit")
      // the successor's exit may come before or after the restart's backoff
      expect(events.filter((e) => e !== `exit ${err.successor} stop`)).toEqual([
        `start ${old}`,
        `exit ${old} crash`,
        "restart 1",
        `start ${now}`,
      ])
    } finally {
      await sup.stop({ killGraceMs: 0 })
    }
  })

  test("a restart outside the window does not count towards the intensity", async () => {
    const sup = new Supervisor({
      command: script("setTimeout(() => process.exit(1), 60)"),
      restart: {
        maxRestarts: 1,
        windowMs: 40,
        backoffInitialMs: 1,
      },
      stdout: "ignore",
    })
    let failed = false
    sup.on("failed", () => (failed = true))
    sup.start()
    await until(() => sup.restarts >= 4, "four restarts")
    expect(failed).toBe(false)
    await sup.stop()
    expect(sup.state).toBe("stopped")
  })

  test("stop() waits for drain, then SIGTERM; an instance ignoring SIGTERM is SIGKILLed after the grace period", async () => {
    let drained = false
    const sup = new Supervisor({
      command: script("process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1e6)"),
      instances: 2,
      killGraceMs: 200,
      stdout: "pipe",
      drain: async () => {
        await Bun.sleep(100)
        drained = true
      },
    })
    const exits: ExitInfo[] = []
    sup.on("exit", (_i, e) => {
      expect(drained).toBe(true)
      exits.push(e)
    })
    sup.start()
    for (const i of sup.instances) {
      const reader = (i.proc!.stdout as ReadableStream<Uint8Array>).getReader()
      await reader.read() // its SIGTERM handler is installed
      reader.releaseLock()
    }
    const pids = sup.instances.map((i) => i.pid)
    await sup.stop()
    expect(exits.map((e) => [e.signal, e.expected])).toEqual([
      ["SIGKILL", true],
      ["SIGKILL", true],
    ])
    for (const pid of pids) expect(alive(pid)).toBe(false)
    expect(sup.state).toBe("stopped")
    sup.start() // a stopped supervisor starts again
    expect(sup.runningCount).toBe(2)
    await sup.stop({ killGraceMs: 0 })
  })

  test("a running supervisor refuses start(); bad options are refused up front", () => {
    const sup = new Supervisor({ command: script("setInterval(() => {}, 1e6)") })
    sup.start()
    try {
      expect(() => sup.start()).toThrow(SupervisorError)
    } finally {
      void sup.stop({ killGraceMs: 0 })
    }
    expect(() => new Supervisor({ command: [] })).toThrow(TypeError)
    expect(() => new Supervisor({ command: ["x"], instances: -1 })).toThrow(/instances/)
    expect(() => new Supervisor({ command: ["x"], instances: 1.5 })).toThrow(/instances/)
    expect(() => new Supervisor({ command: ["x"], restart: { maxRestarts: -1 } })).toThrow(/restart\.maxRestarts/)
    expect(() => new Supervisor({ command: ["x"], restart: { maxUnstableRestarts: 0 } })).toThrow(
      /restart\.maxUnstableRestarts/,
    )
    expect(() => new Supervisor({ command: ["x"], restart: { minUptimeMs: -5 } })).toThrow(/restart\.minUptimeMs/)
    expect(() => new Supervisor({ command: ["x"], restart: { minReadyMs: 0.5 } })).toThrow(/restart\.minReadyMs/)
    expect(() => new Supervisor({ command: ["x"], served: true as never })).toThrow(/served must be a function/)
    expect(() => new Supervisor({ command: ["x"], env: "A=1" as never })).toThrow(/env must be an object/)
  })

  test("a command that cannot be started is a SupervisorError naming it, the runtime's error its cause", () => {
    for (const command of [["/nonexistent/worker", "a"], ["surely-not-a-command-on-path"]]) {
      const sup = new Supervisor({ command, instances: 2 })
      let e: unknown
      try {
        sup.start()
      } catch (thrown) {
        e = thrown
      }
      expect(e).toBeInstanceOf(SupervisorError)
      expect((e as Error).message).toContain(`cannot start the command ${command.join(" ")}`)
      expect((e as Error).cause).toMatchObject({ code: "ENOENT" })
      expect(sup.state).toBe("stopped")
    }
  })

  test("a command gone by the end of a failed pool's window counts as a crash there, not an uncaught error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sup-gone-"))
    const file = join(dir, "worker.sh")
    writeFileSync(file, "#!/bin/sh\nexit 1\n", { mode: 0o755 })
    const sup = new Supervisor({
      command: [file],
      restart: { maxRestarts: 0, maxUnstableRestarts: 1, windowMs: 300, backoffInitialMs: 1 },
    })
    const events: string[] = []
    sup.on("failed", () => {
      events.push("failed")
      rmSync(file, { force: true }) // the deploy that took it away: the window's end finds nothing to start
    })
    sup.on("recovered", (r) => events.push(`recovered ${r.restarted}`))
    sup.start()
    try {
      await until(() => events.length >= 2, "the pool to give up again", 20_000)
      expect(events.slice(0, 2)).toEqual(["failed", "failed"]) // no "recovered": nothing could run
      expect(sup.state).toBe("failed")
    } finally {
      await sup.stop({ killGraceMs: 0 })
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)

  test("env adds to this process's environment (undefined removes a variable), and SLOTBUS_INSTANCE is set", async () => {
    process.env.SLOTBUS_TEST_INHERITED = "kept"
    process.env.SLOTBUS_TEST_REMOVED = "here"
    const out: string[] = []
    const sup = new Supervisor({
      command: script(
        "console.log(JSON.stringify([process.env.SLOTBUS_TEST_INHERITED, process.env.SLOTBUS_TEST_ADDED, process.env.SLOTBUS_TEST_REMOVED ?? null, process.env.SLOTBUS_INSTANCE, !!process.env.PATH])); setInterval(() => {}, 1e6)",
      ),
      env: { SLOTBUS_TEST_ADDED: "added", SLOTBUS_TEST_REMOVED: undefined },
      stdout: "pipe",
    })
    sup.start()
    try {
      for await (const chunk of sup.instances[0]!.proc!.stdout as ReadableStream<Uint8Array>) {
        out.push(new TextDecoder().decode(chunk))
        if (out.join("").includes("\n")) break
      }
      expect(JSON.parse(out.join(""))).toEqual(["kept", "added", null, "0", true])
    } finally {
      delete process.env.SLOTBUS_TEST_INHERITED
      delete process.env.SLOTBUS_TEST_REMOVED
      await sup.stop({ killGraceMs: 0 })
    }
  })

  test.each([
    ["bun worker.ts", ["bun", "worker.ts"]],
    ["  bun   worker.ts --idle park ", ["bun", "worker.ts", "--idle", "park"]],
    [`node -e "console.log('a b')"`, ["node", "-e", "console.log('a b')"]],
    [`a 'b c' "" d\\ e`, ["a", "b c", "", "d e"]],
  ])("splitCommand(%p)", (line, argv) => {
    expect(splitCommand(line)).toEqual(argv)
  })

  test("splitCommand refuses an unterminated quote", () => {
    expect(() => splitCommand(`a "b`)).toThrow(/unterminated/)
  })
})

describe("superviseWorkers", () => {
  test("keeps slotbus workers alive: a worker killed with SIGKILL is replaced and the bus keeps serving", async () => {
    const name = busName("sup")
    await using bus = await SlotBus.listen(name)
    const sup = superviseWorkers(bus, {
      command: [bun, ECHO_WORKER, name],
      instances: 2,
      stdout: "ignore",
      restart: {
        backoffInitialMs: 10,
      },
    })
    try {
      await bus.waitForWorkers(2)
      const victim = sup.instances[0]!.pid
      process.kill(victim, "SIGKILL")
      await until(() => sup.instances[0]!.pid !== victim && sup.instances[0]!.pid !== 0, "the restart")
      await until(() => bus.workerCount === 2 && !bus.workers.some((w) => w.pid === victim), "the new worker to join")
      expect(new TextDecoder().decode(await bus.call(new TextEncoder().encode("hello")))).toBe("hello")
      expect(sup.restarts).toBe(1)
    } finally {
      await sup.stop()
    }
    expect(bus.workerCount).toBe(0)
  })

  test("instances: 0 is a pool that starts empty: it runs, a request waits for a worker, and it stops", async () => {
    const name = busName("sup-empty")
    await using bus = await SlotBus.listen(name)
    const sup = superviseWorkers(bus, { command: [bun, ECHO_WORKER, name], instances: 0 })
    try {
      expect(sup.state).toBe("running")
      expect(sup.runningCount).toBe(0)
      const err = await bus.call(new TextEncoder().encode("x"), { timeoutMs: 50 }).catch((e) => e)
      expect((err as Error).name).toBe("TimeoutError")
    } finally {
      await sup.stop()
    }
    expect(sup.state).toBe("stopped")
  })

  test("stop() lets requests in flight to the workers finish before SIGTERM", async () => {
    const name = busName("sup-drain")
    await using bus = await SlotBus.listen(name)
    const sup = superviseWorkers(bus, { command: `${bun} ${ECHO_WORKER} ${name} --delay-ms=300`, stdout: "ignore" })
    await bus.waitForWorkers(1)
    const answer = bus.call(new TextEncoder().encode("slow"))
    await until(() => bus.workers.some((w) => w.inFlight === 1), "the call in flight")
    await sup.stop()
    expect(new TextDecoder().decode(await answer)).toBe("slow")
  })

  test("a pool that gives up says so once, and requests waiting for its workers fail naming it and its last exit", async () => {
    const name = busName("sup-gave-up")
    await using bus = await SlotBus.listen(name)
    const lines: string[] = []
    const failed = Promise.withResolvers<void>()
    const command = [bun, "-e", "process.exit(3)"]
    const queued = bus.call(new TextEncoder().encode("before"), { timeoutMs: 60_000 }).catch((e) => e)
    const waiting = bus.waitForWorkers(1, { timeoutMs: 60_000 }).catch((e) => e)
    const sup = superviseWorkers(bus, {
      command,
      restart: {
        maxRestarts: 2,
        backoffInitialMs: 1,
      },
      stdout: "ignore",
      log: (line) => lines.push(line),
    })
    sup.on("failed", () => failed.resolve())
    try {
      await failed.promise
      for (const e of [await queued, await waiting, await bus.call(new Uint8Array(1)).catch((e) => e)]) {
        expect(e).toBeInstanceOf(PoolFailedError) // before: the requests waited out their timeout for "0 workers"
        expect(e.pool).toBe(name)
        expect(e.reason).toMatch(/the last exit: pid \d+ exited with code 3/)
        expect(e.message).toContain(`the worker pool of "${name}" (${command.join(" ")}, 1 instance) gave up`)
        expect(e.message).toMatch(/the last exit: pid \d+ exited with code 3/)
      }
      expect(lines.filter((l) => l.includes(" gave up: ")).length).toBe(1) // after a line per crash restart
      expect(lines.at(-1)).toContain(
        "gave up: 3 crashes within restart.windowMs (60000 ms), more than restart.maxRestarts (2); 2 crash restarts in all",
      )
      expect(sup.lastExit?.code).toBe(3)
    } finally {
      await sup.stop()
    }
  })
})
