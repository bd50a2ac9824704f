// Supervised pools across runtimes (issue 67): a Node 26 front's superviseWorkers spawns Bun and Node workers (the
// runtime room's spawn on node:child_process, src/runtime/node/process.ts), writes their lines as a Bun front does,
// restarts workers killed with kill -9 once every request they held settled, and reloads; a Bun front's pool runs
// Node workers the same way, and a stdio bus under Node runs its pool of JSON-RPC workers.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus, superviseWorkers, WorkerGoneError } from "../../src/index.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { alive, busName, type Child, eventually, FIXTURES, outcome, stopAll, until } from "../support/helpers.ts"
import { buildForNode, findNode, nodeFlags } from "../support/runtime/node.ts"
import { type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const node = findNode()
const skip = peerSkip("node")
if (skip) console.log(`skipping the Node pool tests: ${skip}`)

let nodeWorker: ReturnType<typeof buildForNode> | undefined
beforeAll(() => {
  if (node !== null) nodeWorker = buildForNode("node-worker.ts")
})
afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
  nodeWorker?.remove()
})

/** test/support/runtime/node-worker.ts for `name` under `runtime`: echoes, "?pid " answers its pid, "?hold" never. */
function workerCommand(runtime: PeerRuntime, name: string): string[] {
  return runtime === "bun"
    ? [process.execPath, join(FIXTURES, "runtime", "node-worker.ts"), name]
    : [node!, ...nodeFlags(node!), nodeWorker!.entry, name]
}

/** test/support/runtime/pool-front.ts under Node, supervising two workers of `runtime`; their pids once it listens. */
async function nodeFront(runtime: PeerRuntime, name: string): Promise<{ front: Child; pids: number[] }> {
  const command = JSON.stringify(workerCommand(runtime, name))
  const front = await peerChild("node", "runtime/pool-front.ts", [name, "2", command], { stdin: "pipe" })
  const [, ...pids] = await front.waitLine(/^listening (\d+),(\d+)$/, 60_000)
  return { front, pids: pids.map(Number) }
}

/** Asks the front for its pool ("pool") every 200 ms until its last answer satisfies `ok`. */
async function untilPool(
  front: Child,
  what: string,
  ok: (running: number, replaced: Record<string, number>) => boolean,
) {
  const last = () =>
    front.lines
      .filter((l) => l.startsWith("pool "))
      .at(-1)
      ?.split(" ")
  await until(
    () => {
      const p = last()
      if (p && ok(Number(p[2]), JSON.parse(p[3]!))) return true
      front.write("pool\n")
      return false
    },
    what,
    120_000,
    200,
  )
}

/** Waits until the front printed instance `index`'s line "ready …" from `pid`, as its pool writes a worker's line. */
function readyLine(front: Child, name: string, index: number, pid: number) {
  return front.waitLine(new RegExp(`^\\[${name}#${index} pid ${pid}\\] ready \\d+\\.\\d+\\.\\d+$`), 60_000)
}

describe.skipIf(skip !== null).each(["bun", "node"] as const)("a Node 26 front's pool of %s workers", (runtime) => {
  test("serves, writes its workers' lines, and restarts both after kill -9 with 32 requests in flight, each settled", async () => {
    const name = busName("nodepool")
    const { front, pids } = await nodeFront(runtime, name)
    try {
      for (const [i, pid] of pids.entries()) await readyLine(front, name, i, pid)
      front.write("call hello hello from a Node front\n")
      await front.waitLine(/^answer hello hello from a Node front$/, 30_000)

      for (let i = 0; i < 32; i++) front.write(`call held${i} ?hold\n`)
      const inFlight = () =>
        front.lines
          .filter((l) => l.startsWith("workers "))
          .at(-1)
          ?.slice(8)
          .split(",")
          .reduce((n, w) => n + Number(w.split(":")[1] ?? 0), 0)
      expect(await eventually(() => inFlight() === 32 || (front.write("workers\n"), false), 60_000)).toBe(true)
      for (const pid of pids) process.kill(pid, "SIGKILL")
      const settled = await Promise.all(
        Array.from({ length: 32 }, (_, i) => front.waitLine(new RegExp(`^(?:answer|failed) held${i}\\b.*$`), 60_000)),
      )
      expect(settled.map((m) => m[0])).toEqual(Array.from({ length: 32 }, (_, i) => `failed held${i} WorkerGoneError`))

      const restarted: number[] = []
      for (const [i, pid] of pids.entries()) {
        await front.waitLine(new RegExp(`^exit ${i} ${pid} null SIGKILL crash$`), 60_000)
        const [, next] = await front.waitLine(new RegExp(`^start ${i} (\\d+)$`), 60_000)
        expect(Number(next)).not.toBe(pid)
        await readyLine(front, name, i, Number(next))
        restarted.push(Number(next))
      }
      front.write("call again served again\n")
      await front.waitLine(/^answer again served again$/, 30_000)

      front.write("close\n")
      expect(await front.exited).toBe(0)
      expect(await eventually(() => restarted.every((pid) => !alive(pid)), 30_000)).toBe(true)
    } finally {
      await front.kill()
    }
  }, 180_000)

  test("reload() replaces both workers surge-first and the pool serves on", async () => {
    const name = busName("nodereload")
    const { front, pids } = await nodeFront(runtime, name)
    try {
      for (const [i, pid] of pids.entries()) await readyLine(front, name, i, pid)
      front.write("reload\n")
      const [, a, b] = await front.waitLine(/^reloaded (\d+),(\d+)$/, 120_000)
      const successors = [Number(a), Number(b)]
      for (const [i, pid] of pids.entries()) {
        expect(successors[i]).not.toBe(pid)
        await front.waitLine(new RegExp(`^exit ${i} ${pid} 0 null reload$`), 30_000)
        await readyLine(front, name, i, successors[i]!)
      }
      front.write("call pid ?pid \n")
      const [, answered] = await front.waitLine(/^answer pid (\d+)$/, 30_000)
      expect(successors).toContain(Number(answered))
      front.write("close\n")
      expect(await front.exited).toBe(0)
    } finally {
      await front.kill()
    }
  }, 180_000)

  test("once stop() resolves the bus lists none of its workers (Node often sees their exits before their leaves)", async () => {
    const stopped: string[] = []
    for (let round = 0; round < 3; round++) {
      const name = busName("nodestop")
      const { front, pids } = await nodeFront(runtime, name)
      try {
        for (const [i, pid] of pids.entries()) await readyLine(front, name, i, pid)
        front.write("stop\n")
        stopped.push((await front.waitLine(/^stopped \d+$/, 60_000))[0])
        front.write("close\n")
        expect(await front.exited).toBe(0)
      } finally {
        await front.kill()
      }
    }
    expect(stopped).toEqual(Array(3).fill("stopped 0"))
  }, 180_000)
})

describe.skipIf(skip !== null)("node:ffi's ExperimentalWarning in a Node 26 front's pool", () => {
  const WARNING = "ExperimentalWarning: FFI is an experimental feature"
  test.each([
    ["the front alone prints it: its Node workers, started and restarted, do not", undefined, 1],
    ["SLOTBUS_NODE_FFI_WARNING=on keeps each worker's (two, and the one restarted)", "on", 4],
  ])("%s", async (_, setting, warnings) => {
    const name = busName("ffiwarn")
    const env = { ...process.env, NODE_NO_WARNINGS: "0", SLOTBUS_NODE_FFI_WARNING: setting }
    const command = JSON.stringify(workerCommand("node", name))
    const front = await peerChild("node", "runtime/pool-front.ts", [name, "2", command], { stdin: "pipe", env })
    try {
      const [, ...pids] = (await front.waitLine(/^listening (\d+),(\d+)$/, 60_000)).map(Number)
      for (const [i, pid] of pids.entries()) await readyLine(front, name, i, pid!)
      // its stderr comes on another pipe than its "ready": where it warns, the line is waited for, a worker's before
      // it is killed (CI once missed the killed one's)
      const warned = (pid: number) =>
        front.output.split("\n").some((l) => l.includes(`pid ${pid}]`) && l.includes(WARNING))
      if (setting === "on") await until(() => pids.every(warned), "each worker's warning", 30_000)
      process.kill(pids[0]!, "SIGKILL")
      const [, next] = await front.waitLine(/^start 0 (\d+)$/, 60_000)
      await readyLine(front, name, 0, Number(next))
      if (setting === "on") await until(() => warned(Number(next)), "the restarted worker's warning", 30_000)
      front.write("close\n")
      expect(await front.exited).toBe(0)
      expect(front.output.split("\n").filter((l) => l.includes(WARNING))).toHaveLength(warnings)
    } finally {
      await front.kill()
    }
  })
})

describe.skipIf(skip !== null)("a Node 26 front's worker logs", () => {
  test("lines come escaped and cut as on Bun, the unterminated last one on stderr before a kill -9 included", async () => {
    const name = busName("nodelogs")
    const dir = mkdtempSync(join(tmpdir(), "slotbus-node-logs-"))
    const command = [process.execPath, join(FIXTURES, "kit", "log-worker.ts"), "hostile", join(dir, "once")]
    const front = await peerChild("node", "runtime/pool-front.ts", [name, "1", JSON.stringify(command)], {
      stdin: "pipe",
    })
    try {
      const [, pid] = await front.waitLine(/^listening (\d+)$/, 60_000)
      const head = `[${name}#0 pid ${pid}]`
      await front.waitLine(new RegExp(`^exit 0 ${pid} null SIGKILL crash$`), 60_000)
      await until(() => front.stderr.split("\n").includes(`${head} last words`), "the last words on stderr", 30_000)
      expect(front.lines).toContain(`${head} \\x1b]0;pwned\\x07\\x1b[2Jcolour \\x1b[31mred\\x1b[0m`)
      expect(front.lines).toContain(`${head} \ufffd\ufffd bin`)
      expect(front.lines).toContain(`${head} ${"a".repeat(16_384)} [truncated]`)
      expect(front.lines).toContain(`${head} after the long line`)
      front.write("close\n")
      expect(await front.exited).toBe(0)
    } finally {
      await front.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)
})

describe.skipIf(skip !== null)("a Node 26 front's pool that replaces and scales its workers", () => {
  test("recycle: { maxRequests: 20 } replaces a Node worker past it, and every request is answered", async () => {
    const name = busName("noderecycle")
    const command = JSON.stringify(workerCommand("node", name))
    const options = JSON.stringify({ pool: { recycle: { maxRequests: 20 } } })
    const front = await peerChild("node", "runtime/pool-front.ts", [name, "1", command, options], { stdin: "pipe" })
    try {
      const [, first] = await front.waitLine(/^listening (\d+)$/, 60_000)
      for (let i = 0; i < 60; i++) front.write(`call c${i} ?pid \n`)
      const answers = await Promise.all(
        Array.from({ length: 60 }, (_, i) => front.waitLine(new RegExp(`^(?:answer|failed) c${i} (.*)$`), 60_000)),
      )
      expect(answers.every((m) => m[0].startsWith("answer"))).toBe(true)
      await front.waitLine(new RegExp(`^exit 0 ${first} 0 null recycle$`), 60_000)
      await untilPool(front, "a recycle counted", (running, replaced) => running === 1 && replaced.recycle! >= 1)
      front.write("close\n")
      expect(await front.exited).toBe(0)
    } finally {
      await front.kill()
    }
  }, 180_000)

  test("instances: { min: 1, max: 4 } grows under waiting requests, answers them all, and shrinks when idle", async () => {
    const name = busName("nodeelastic")
    const command = JSON.stringify([process.execPath, join(FIXTURES, "echo-worker.ts"), name, "--delay-ms=2000"])
    const options = JSON.stringify({ pool: { idleTimeoutMs: 1000 } })
    const instances = JSON.stringify({ min: 1, max: 4 })
    const front = await peerChild("node", "runtime/pool-front.ts", [name, instances, command, options], {
      stdin: "pipe",
    })
    try {
      await front.waitLine(/^listening \d+$/, 60_000)
      for (let i = 0; i < 96; i++) front.write(`call c${i} x${i}\n`) // 32 slots a worker: 64 wait
      await untilPool(front, "the pool to grow", (running) => running > 1)
      for (let i = 0; i < 96; i++) await front.waitLine(new RegExp(`^answer c${i} x${i}$`), 120_000)
      await untilPool(front, "the pool to shrink", (running, replaced) => running === 1 && replaced.scale! >= 1)
      front.write("close\n")
      expect(await front.exited).toBe(0)
    } finally {
      await front.kill()
    }
  }, 180_000)
})

describe.skipIf(skip !== null)("shared Node 26 fronts (listen { shared: true }) and their one pool", () => {
  test("the leader runs the pool, the other stands by; after a kill -9 of the leader the other runs it", async () => {
    const name = busName("nodeshared")
    const args = [name, "2", JSON.stringify(workerCommand("bun", name)), JSON.stringify({ listen: { shared: true } })]
    const leader = await peerChild("node", "runtime/pool-front.ts", args, { stdin: "pipe" })
    let other: Child | undefined
    try {
      const [, ...old] = (await leader.waitLine(/^listening (\d+),(\d+)$/, 60_000)).map(Number)
      expect(old.every((pid) => pid > 0)).toBe(true)
      other = await peerChild("node", "runtime/pool-front.ts", args, { stdin: "pipe" })
      await other.waitLine(/^listening 0,0$/, 60_000)
      await untilPool(other, "the second front's pool to stand by", (running) => running === 0)
      expect(other.lines.filter((l) => l.startsWith("pool ")).at(-1)).toStartWith("pool created 0 ")
      // the leader's workers serve the second front too
      other.write("call before ?pid \n")
      const [, pid] = await other.waitLine(/^answer before (\d+)$/, 60_000)
      expect(old).toContain(Number(pid))

      await leader.kill("SIGKILL")
      await untilPool(other, "the second front to run the pool", (running) => running === 2)
      const fresh = other.lines.filter((l) => /^start \d+ \d+$/.test(l)).map((l) => Number(l.split(" ")[2]))
      expect(fresh.length).toBe(2)
      for (const pid of fresh) expect(old).not.toContain(pid)
      // the dead leader's workers leave once their front is gone (docs/api.md, Several fronts)
      expect(await eventually(() => old.every((pid) => !alive(pid)), 60_000)).toBe(true)
      other.write("call after ?pid \n")
      const [, after] = await other.waitLine(/^answer after (\d+)$/, 60_000)
      expect(fresh).toContain(Number(after))
      other.write("close\n")
      expect(await other.exited).toBe(0)
    } finally {
      await leader.kill()
      await other?.kill()
    }
  }, 180_000)
})

describe.skipIf(skip !== null)("a Bun front's pool of Node 26 workers", () => {
  test("serves from each worker, restarts both after kill -9 with 32 requests in flight (all WorkerGoneError), reloads", async () => {
    const name = busName("bunpool")
    await using bus = await SlotBus.listen(name)
    const pool = superviseWorkers(bus, {
      command: workerCommand("node", name),
      instances: 2,
      env: { SLOTBUS_LIB: await libraryPath(), NODE_NO_WARNINGS: "1" },
      stdout: "ignore",
      restart: { backoffInitialMs: 10 },
    })
    try {
      await bus.waitForWorkers(2, { timeoutMs: 60_000 })
      const pids = pool.instances.map((i) => i.pid)
      expect(bus.workers.map((w) => w.pid).sort()).toEqual([...pids].sort())

      const held = Array.from({ length: 32 }, () => outcome(bus.call("?hold"), 60_000))
      await until(() => bus.workers.reduce((n, w) => n + w.inFlight, 0) === 32, "32 requests in flight", 60_000)
      for (const pid of pids) process.kill(pid, "SIGKILL")
      const settled = await Promise.all(held)
      for (const s of settled) expect(s.state === "rejected" && s.error).toBeInstanceOf(WorkerGoneError)

      await until(
        () => pool.runningCount === 2 && bus.workerCount === 2 && !bus.workers.some((w) => pids.includes(w.pid)),
        "both restarted and joined",
        60_000,
      )
      expect(pool.restarts).toBe(2)
      const restarted = pool.instances.map((i) => i.pid)
      expect(restarted).toContain(Number(new TextDecoder().decode(await bus.call("?pid "))))

      await pool.reload({ readyTimeoutMs: 60_000 })
      const reloaded = pool.instances.map((i) => i.pid)
      for (const pid of reloaded) expect(restarted).not.toContain(pid)
      expect(reloaded).toContain(Number(new TextDecoder().decode(await bus.call("?pid "))))
    } finally {
      await pool.stop()
    }
    expect(bus.workerCount).toBe(0)
  }, 180_000)
})

describe("bus.close() under a front's pool (superviseWorkers) of two workers", () => {
  const rows = [
    ["bun", "bun"],
    ["bun", "node"],
    ["node", "bun"],
    ["node", "node"],
  ] as const
  for (const [front, workers] of rows)
    test.skipIf(front === "bun" && workers === "bun" ? false : skip !== null)(
      `a ${front} front's close() resolves once its ${workers} workers exited, none of them saying it exits`,
      async () => {
        const name = busName("closepool")
        const command = JSON.stringify(workerCommand(workers, name))
        const env = { ...process.env, SLOTBUS_LIB: await libraryPath(), NODE_NO_WARNINGS: "1" }
        const child = await peerChild(front, "runtime/pool-front.ts", [name, "2", command], { stdin: "pipe", env })
        try {
          const [, ...pids] = (await child.waitLine(/^listening (\d+),(\d+)$/, 60_000)).map(Number)
          for (const [i, pid] of pids.entries()) await readyLine(child, name, i, pid!)
          child.write("close-bus\n")
          // before: "closed <both pids>": close() resolved while the pool was still ending them
          expect((await child.waitLine(/^closed .*$/, 60_000))[0]).toBe("closed ")
          expect(await child.exited).toBe(0)
          // before: about one close in two, "slotbus: worker <pid> … exits: hub-closed (exitWithFront; …)", as if
          // something had gone wrong: the pool was ending it
          expect(child.stderr).not.toContain(" exits: ")
        } finally {
          await child.kill()
        }
      },
      120_000,
    )
})

describe.each(["bun", "node"] as const)(
  "a %s front's bus.close() with requests queued for its pool's workers",
  (front) => {
    /** The front, its pool of two workers under its own runtime with a slot each, busy with two held calls and 4 queued. */
    async function queued(name: string, file: string) {
      const command = JSON.stringify(workerCommand(front, name))
      const env = { ...process.env, SLOTBUS_LIB: await libraryPath(), NODE_NO_WARNINGS: "1" }
      const opts = JSON.stringify({ listen: { slots: 1 } })
      const child = await peerChild(front, "runtime/pool-front.ts", [name, "2", command, opts], { stdin: "pipe", env })
      const [, ...pids] = (await child.waitLine(/^listening (\d+),(\d+)$/, 60_000)).map(Number)
      for (const [i, pid] of pids.entries()) await readyLine(child, name, i, pid!)
      for (let i = 0; i < 6; i++) child.write(`call ${i} ?until ${file}\n`)
      const holding = () =>
        child.lines
          .findLast((l) => l.startsWith("workers "))
          ?.split(/[ ,]/)
          .slice(1)
          .toSorted()
      const both = pids.map((p) => `${p}:1`).toSorted()
      await until(() => (child.write("workers\n"), Bun.deepEquals(holding(), both)), "both workers hold one")
      return child
    }
    /** "answer" or "failed <error name>" for each call that settled, by call. */
    const settled = (child: Child) =>
      Object.fromEntries(
        child.lines
          .filter((l) => /^(answer|failed) /.test(l))
          .map((l) => l.split(" "))
          .map(([how, id, ...rest]) => [id, how === "answer" ? how : `failed ${rest.join(" ")}`]),
      )

    test.skipIf(front === "bun" ? false : skip !== null)(
      "what is queued is served by the pool's workers before they stop (it failed at close()'s deadline before)",
      async () => {
        const dir = mkdtempSync(join(tmpdir(), "slotbus-closeq-"))
        const child = await queued(busName("closeq"), join(dir, "go"))
        try {
          child.write("close-bus\n")
          await child.waitLine(/^closing$/, 30_000)
          writeFileSync(join(dir, "go"), "")
          expect((await child.waitLine(/^closed .*$/, 60_000))[0]).toBe("closed ")
          expect(Object.values(settled(child))).toEqual(Array(6).fill("answer"))
        } finally {
          await child.kill()
          rmSync(dir, { recursive: true, force: true })
        }
      },
      120_000,
    )

    test.skipIf(front === "bun" ? false : skip !== null)(
      "after pool.stop(), what is queued fails with BusClosedError at once: no worker is left to take it",
      async () => {
        const dir = mkdtempSync(join(tmpdir(), "slotbus-closeq-"))
        const child = await queued(busName("closeq"), join(dir, "go"))
        try {
          child.write("stop\n")
          writeFileSync(join(dir, "go"), "")
          await child.waitLine(/^stopped 0$/, 60_000)
          // a deadline of 10 minutes: close() waited it out for nothing before
          child.write("close-bus 600000\n")
          expect((await child.waitLine(/^closed .*$/, 60_000))[0]).toBe("closed ")
          const s = Object.values(settled(child))
          expect(s.toSorted()).toEqual([...Array(2).fill("answer"), ...Array(4).fill("failed BusClosedError")])
        } finally {
          await child.kill()
          rmSync(dir, { recursive: true, force: true })
        }
      },
      120_000,
    )
  },
)

describe.skipIf(skip !== null)("a stdio bus under Node 26 (slotbus/stdio)", () => {
  test("its pool of Bun JSON-RPC workers answers, logs their stderr, restarts after kill -9 (requests in flight settled), reloads", async () => {
    const worker = join(FIXTURES, "..", "stdio", "workers", "worker.ts")
    const front = await peerChild("node", "runtime/stdio-front.ts", [process.execPath, worker])
    try {
      const steps = new Map<string, unknown>()
      for (const name of ["echoed", "started", "logged", "settled", "restarted", "reloaded", "answered", "stopped"]) {
        const [, json] = await front.waitLine(new RegExp(`^${name} (.*)$`), 120_000)
        steps.set(name, JSON.parse(json!))
      }
      const started = steps.get("started") as number[]
      expect(steps.get("echoed")).toEqual({ own: true, pids: [...started].sort() })
      expect(steps.get("logged")).toEqual(["a line on stderr", "and another"])
      expect(steps.get("settled")).toEqual(Array(8).fill("WorkerGoneError"))
      const restarted = steps.get("restarted") as number[]
      const reloaded = steps.get("reloaded") as number[]
      for (const pid of restarted) expect(started).not.toContain(pid)
      for (const pid of reloaded) expect(restarted).not.toContain(pid)
      expect([steps.get("answered"), steps.get("stopped")]).toEqual(["after", "stopped"])
      expect(await front.exited).toBe(0)
      expect([...started, ...restarted, ...reloaded].filter(alive)).toEqual([])
    } finally {
      await front.kill()
    }
  }, 180_000)

  test("a worker that stops reading its stdin: callers get BackpressureError, what the bus holds stays bounded", async () => {
    const worker = join(FIXTURES, "..", "stdio", "workers", "worker.ts")
    const front = await peerChild("node", "runtime/stdio-front.ts", [process.execPath, worker, "no-read"])
    try {
      const [, refused] = await front.waitLine(/^refused (\d+)$/, 120_000)
      const [, queued] = await front.waitLine(/^queued (\d+)$/, 30_000)
      expect(Number(refused)).toBe(300)
      expect(Number(queued)).toBeLessThanOrEqual(256 * 1024 + 17 * 1024) // the limit plus one message
      expect(await front.exited).toBe(0)
    } finally {
      await front.kill()
    }
  }, 180_000)
})
