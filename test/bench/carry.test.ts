// `slotbus bench carry`: its options, its smallest run as JSON (rows made of what they say: every ratio the row's
// figure ÷ direct's in the same round, CPU per request read for every process), a variant that cannot run as a
// line rather than a crash, the Node fronts (read against Node's direct; without Node a line with the install
// line), and bench compare's carrying measure; no front or worker left after (no timing asserts).
import { describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ANSWERS } from "../../bench/lib/answers.ts"
import { type MachineRow, main, type SummaryRow } from "../../bench/carry/cli.ts"
import { FIGURES, type RunRow, type SkippedRow } from "../../bench/carry/run.ts"
import { processesWithEnv, usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"
import { findNode, NODE_INSTALL } from "../support/runtime/node.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const repo = join(import.meta.dir, "..", "..")

usageErrors("carry", main, [
  ["--variants", "nope"],
  ["--variants", ""],
  ["--answers", "big"],
  ["--workers", "0"],
  ["--workers", "1,x"],
  ["--seconds", "0"],
  ["--seconds", "1.5"],
  ["--rounds", "0"],
  ["--connections", "-1"],
  ["--client", "curl"],
  ["--rounds"],
  ["--what"],
])

// Other engineers may run the bench at the same time: what this file started carries a mark in its environment.
const MARK = `${process.pid}-${Date.now()}`
const env = { ...process.env, SLOTBUS_CARRY_TEST: MARK }
const leftovers = () => processesWithEnv("SLOTBUS_CARRY_TEST", MARK)

async function carry(...argv: string[]) {
  return carryWith({}, ...argv)
}

async function carryWith(more: Record<string, string>, ...argv: string[]) {
  const r = await run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "carry", ...argv], {
    cwd: repo,
    env: { ...env, ...more },
    timeoutMs: 150_000,
  })
  // the tables come with their progress on stderr, JSON alone
  expect({ code: r.code, stderr: r.code ? r.stderr : "" }).toEqual({ code: 0, stderr: "" })
  if (argv.includes("--json")) expect(r.stderr).toBe("")
  else for (const l of r.stderr.trim().split("\n")) expect(l).toStartWith("round ")
  return r.stdout
}

async function carryJson(...argv: string[]) {
  type Line = MachineRow | RunRow | SummaryRow | SkippedRow
  const lines = (await carryWith({}, "--json", ...argv))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line)
  return {
    head: lines[0] as MachineRow,
    runs: lines.filter((x): x is RunRow => x.kind === "run"),
    rows: lines.filter((x): x is SummaryRow => x.kind === "row"),
    skipped: lines.filter((x): x is SkippedRow => x.kind === "skipped"),
  }
}

const wrkSkip = toolSkipReason("wrk")
sayWhySkipped("slotbus bench carry --json", wrkSkip)
const node = findNode()
sayWhySkipped("slotbus bench carry's Node fronts", node ? null : `no Node >= 26.1 here: ${NODE_INSTALL}`)

describe.skipIf(wrkSkip !== null)("with wrk", () => {
  test("one round of 1 s, 1 worker: every figure per process, and each ratio its figure ÷ direct's of that round", async () => {
    const { head, runs, rows, skipped } = await carryJson(
      "--variants",
      "fetch,call",
      "--workers",
      "1",
      "--rounds",
      "1",
      "--seconds",
      "1",
    )
    expect(head.kind).toBe("machine")
    expect(head).toMatchObject({ client: "wrk", connections: 16, seconds: 1, rounds: 1 })
    expect(head.loadBefore).toBeGreaterThanOrEqual(0)
    expect(head.loadAfter).toBeGreaterThanOrEqual(0)
    expect(skipped).toEqual([])
    // direct first (it is always measured), then the variants asked for, per answer
    expect(runs.map((x) => `${x.answer} ${x.variant}`)).toEqual(
      ANSWERS.flatMap((a) => ["direct", "fetch", "call"].map((v) => `${a} ${v}`)),
    )
    for (const x of runs) {
      const direct = runs.find((d) => d.variant === "direct" && d.answer === x.answer && d.round === x.round)!
      const f = x.figures
      expect(x.round).toBe(1)
      expect(x.workers).toBe(1)
      expect(x.requests).toBeGreaterThan(0)
      for (const v of [f.rps, f.p50us, f.p99us, f.cpuFrontUs, f.cpuClientUs, f.cpuTotalUs]) expect(v).toBeGreaterThan(0)
      expect(f.p99us!).toBeGreaterThanOrEqual(f.p50us!)
      if (x.variant === "direct") {
        expect(f.cpuWorkersUs).toBeNull() // no workers: no figure, rather than a zero
        expect(x.overDirectUs).toBeNull()
      } else {
        expect(f.cpuWorkersUs).toBeGreaterThan(0)
        expect(x.overDirectUs).toBeCloseTo(f.cpuTotalUs! - direct.figures.cpuTotalUs!, 6)
      }
      expect(f.cpuTotalUs).toBeCloseTo(f.cpuFrontUs! + (f.cpuWorkersUs ?? 0), 6)
      for (const k of FIGURES) {
        const mine = f[k]
        const theirs = direct.figures[k]
        if (mine === null || theirs === null || !(theirs > 0)) expect(x.vsDirect[k]).toBeNull()
        else expect(x.vsDirect[k]).toBeCloseTo(mine / theirs, 9)
      }
      // syscalls and context switches where perf stat counts (a front answers with at least one syscall), else
      // none and the machine line says why
      if (head.perfNote === null) {
        expect(f.syscallsFront).toBeGreaterThan(0)
        expect(f.ctxSwitchesFront).toBeGreaterThanOrEqual(0)
        if (x.variant !== "direct") expect(f.syscallsWorkers).toBeGreaterThan(0)
      } else for (const k of ["syscallsFront", "syscallsWorkers"] as const) expect(f[k]).toBeNull()
    }
    if (head.perfNote !== null) expect(head.perfNote).toContain("perf")
    // one round: the medians are that round's figures and ratios
    expect(rows.length).toBe(runs.length)
    for (const x of rows) {
      const one = runs.find((r) => r.answer === x.answer && r.variant === x.variant && r.workers === x.workers)!
      expect(x).toMatchObject({ rounds: 1, requests: one.requests, figures: one.figures, vsDirect: one.vsDirect })
      expect(x.overDirectUs).toBe(one.overDirectUs)
    }
    expect(leftovers()).toEqual([])
  }, 180_000)

  test("a variant that cannot run (no library under --root) is a line saying why, and direct still runs", async () => {
    const empty = mkdtempSync(join(tmpdir(), "slotbus-carry-root-"))
    try {
      const args = ["--variants", "rpc", "--answers", "small", "--workers", "1", "--rounds", "1", "--seconds", "1"]
      const out = await carry(...args, "--no-perf", "--root", empty)
      const line = out.split("\n").find((l) => l.startsWith("could not run: RPC, 1 worker, round 1: "))
      expect(line).toBeDefined()
      expect(line).toContain(empty) // the import that failed names the tree
      expect(out.split("\n").some((l) => /^\| – \| direct \| [\d,]+ \|/.test(l))).toBe(true)
      expect(out.split("\n").some((l) => l.includes("| RPC |"))).toBe(false)
      expect(out).toContain("syscalls and context switches not counted: --no-perf")
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
    expect(leftovers()).toEqual([])
  }, 180_000)

  test.skipIf(node === null)(
    "the Node fronts: each a row, node-direct measured with them, their ratios and CPU over Node direct's",
    async () => {
      const { head, runs, skipped } = await carryJson(
        ...["--variants", "node-fetch,node-proxy", "--answers", "small", "--workers", "1", "--rounds", "1"],
        ...["--seconds", "1", "--no-perf"],
      )
      expect(skipped).toEqual([])
      expect(head.node).toMatch(/^v\d+\.\d+\.\d+ at \//) // which Node ran them
      // Bun's direct always, Node's with any Node front: each variant a row of its own
      expect(runs.map((x) => x.variant)).toEqual(["direct", "node-direct", "node-fetch", "node-proxy"])
      const bun = runs.find((x) => x.variant === "direct")!
      const nodeDirect = runs.find((x) => x.variant === "node-direct")!
      expect(nodeDirect.name).toBe("Node direct")
      expect(nodeDirect.figures.cpuWorkersUs).toBeNull()
      expect(nodeDirect.overDirectUs).toBeNull()
      for (const x of runs.filter((r) => r.variant === "node-fetch" || r.variant === "node-proxy")) {
        const f = x.figures
        expect(x.requests).toBeGreaterThan(0)
        for (const v of [f.rps, f.p50us, f.cpuFrontUs, f.cpuWorkersUs, f.cpuTotalUs]) expect(v).toBeGreaterThan(0)
        // against Node's direct, not Bun's
        expect(x.overDirectUs).toBeCloseTo(f.cpuTotalUs! - nodeDirect.figures.cpuTotalUs!, 6)
        expect(x.vsDirect.cpuTotalUs).toBeCloseTo(f.cpuTotalUs! / nodeDirect.figures.cpuTotalUs!, 9)
        expect(x.vsDirect.rps).toBeCloseTo(f.rps! / nodeDirect.figures.rps!, 9)
        expect(x.overDirectUs).not.toBeCloseTo(f.cpuTotalUs! - bun.figures.cpuTotalUs!, 6)
      }
      expect(leftovers()).toEqual([])
    },
    180_000,
  )

  test("without Node, each Node front is a line with the install line, and the Bun rows still run", async () => {
    const missing = join(tmpdir(), `slotbus-no-node-${MARK}`)
    const args = ["--variants", "node-fetch,fetch", "--answers", "small", "--workers", "1", "--rounds", "1"]
    const out = await carryWith({ SLOTBUS_NODE: missing }, ...args, "--seconds", "1", "--no-perf")
    const lines = out.split("\n")
    for (const name of ["Node direct", "Node bus.fetch"])
      expect(lines.find((l) => l.startsWith(`could not run: ${name}, 1 worker, round 1: `))).toBe(
        `could not run: ${name}, 1 worker, round 1: SLOTBUS_NODE=${missing} is not a node >= 26.1: ${NODE_INSTALL}`,
      )
    expect(lines.some((l) => /^\| – \| direct \| [\d,]+ \|/.test(l))).toBe(true)
    expect(lines.some((l) => /^\| 1 \| bus\.fetch \| [\d,]+ \(/.test(l))).toBe(true)
    expect(lines.some((l) => l.includes("| Node "))).toBe(false)
    expect(lines.some((l) => l.startsWith("Node fronts:"))).toBe(false)
    expect(leftovers()).toEqual([])
  }, 180_000)

  test("bench compare's carrying measure: bus.fetch and RPC on the small answer from 2 workers, with CPU", async () => {
    const r = await run(
      [
        process.execPath,
        join(repo, "bench", "compare", "measure.ts"),
        `--root=${repo}`,
        "--measure=carry",
        "--seconds=1",
      ],
      { cwd: repo, env, timeoutMs: 150_000 },
    )
    expect({ code: r.code, stderr: r.code ? r.stderr : "" }).toEqual({ code: 0, stderr: "" })
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { measure: string; perS: number; p50us: number; cpuUs: number })
    expect(lines.map((x) => x.measure)).toEqual([
      "carry bus.fetch, small JSON, 2 workers",
      "carry RPC, small JSON, 2 workers",
    ])
    for (const x of lines) for (const v of [x.perS, x.p50us, x.cpuUs]) expect(v).toBeGreaterThan(0)
    expect(leftovers()).toEqual([])
  }, 180_000)
})
