// `slotbus bench buses` (issue 78): its options, and its smallest run as JSON: one bus alone per runtime and a front
// with two and three buses (Bun and Node workers in turn), a row per bus with its p50, p99 and ratio to alone read;
// a skip note where there is no Node; no worker left after (no timing asserts).
import { expect, test } from "bun:test"
import { join } from "node:path"
import { type BusesRow, main } from "../../bench/buses/cli.ts"
import { processesWithEnv, usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"
import { findNode, NODE_INSTALL } from "../support/runtime/node.ts"

const repo = join(import.meta.dir, "..", "..")

usageErrors("buses", main, [
  ["--buses", "0"],
  ["--buses", "1,x"],
  ["--buses", "65"],
  ["--rounds", "0"],
  ["--requests", "5"],
  ["--settle-ms", "-1"],
  ["--workers", "deno"],
  ["--workers", ""],
  ["--what"],
])

// Other engineers may run the bench at the same time: what this file started carries a mark in its environment.
const MARK = `${process.pid}-${Date.now()}`
const leftovers = () => processesWithEnv("SLOTBUS_BUSES_BENCH_TEST", MARK)

async function bench(env: Record<string, string | undefined>, ...argv: string[]) {
  const r = await run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "buses", "--json", ...argv], {
    cwd: repo,
    env: { ...process.env, SLOTBUS_BUSES_BENCH_TEST: MARK, ...env },
    timeoutMs: 120_000,
  })
  expect({ code: r.code, stderr: r.code ? r.stderr : "" }).toEqual({ code: 0, stderr: "" })
  const [head, ...rest] = r.stdout.trim().split("\n")
  return {
    head: JSON.parse(head!) as { machine: { cores: number }; notes: string[] },
    rows: rest.map((l) => JSON.parse(l) as BusesRow),
  }
}

const node = findNode()
if (!node) console.log(`bench buses runs Bun workers only here: no Node >= 26.1 (${NODE_INSTALL})`)

test("bench buses measures every bus of each setup against one bus alone of its runtime, and leaves nothing running", async () => {
  const argv = ["--buses", "2,3", "--rounds", "1", "--requests", "50", "--settle-ms", "0"]
  const { head, rows } = await bench({}, ...argv)
  expect(head.machine.cores).toBeGreaterThan(0)
  const kinds = node ? ["bun", "node"] : ["bun"]
  const expected = [
    ...kinds.map((k) => [1, 0, k]),
    [2, 0, "bun"],
    [2, 1, kinds[1 % kinds.length]],
    [3, 0, "bun"],
    [3, 1, kinds[1 % kinds.length]],
    [3, 2, "bun"],
  ]
  expect(rows.map((r): unknown[] => [r.buses, r.bus, r.worker])).toEqual(expected)
  for (const r of rows) {
    expect(r.p50us).toBeGreaterThan(0)
    expect(r.p99us).toBeGreaterThanOrEqual(r.p50us)
    expect(r.each).toHaveLength(1)
    expect(r.ratio).toBeGreaterThan(0)
  }
  for (const r of rows.filter((r) => r.buses === 1)) expect(r.ratio).toBe(1)
  expect(head.notes.some((n) => n.startsWith("Node workers skipped"))).toBe(node === null)
  expect(leftovers()).toEqual([])
}, 150_000)

test("without a Node, bench buses says so with the install line and measures Bun workers", async () => {
  const { head, rows } = await bench(
    { SLOTBUS_NODE: join(repo, "no-such-node") },
    "--buses",
    "2",
    "--rounds",
    "1",
    "--requests",
    "20",
    "--settle-ms",
    "0",
  )
  expect(head.notes).toEqual([
    `Node workers skipped: SLOTBUS_NODE=${join(repo, "no-such-node")} is not a node >= 26.1: ${NODE_INSTALL}`,
  ])
  expect(rows.map((r) => r.worker)).toEqual(["bun", "bun", "bun"])
  expect(leftovers()).toEqual([])
}, 120_000)

test("a runtime named twice in --workers is measured alone once, and takes its turns", async () => {
  const { rows } = await bench({}, "--workers", "bun,bun", "--buses", "2", "--rounds", "1", "--requests", "20")
  expect(rows.map((r): unknown[] => [r.buses, r.bus, r.worker])).toEqual([
    [1, 0, "bun"],
    [2, 0, "bun"],
    [2, 1, "bun"],
  ])
  expect(leftovers()).toEqual([])
}, 120_000)
