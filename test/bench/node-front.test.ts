// `slotbus bench node` (issues 77, 78): its options, its smallest run of each route (the table's shape: a table per
// connection count, a row per variant in order, every figure read, no socket error, ratios to cluster on every row
// but cluster's), the round trip table, a skip line with the install line where there is no Node; no front or worker
// left after (no timing asserts).
import { expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { main } from "../../bench/node/cli.ts"
import { processesWithEnv, usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"
import { findNode, NODE_INSTALL } from "../support/runtime/node.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const repo = join(import.meta.dir, "..", "..")

usageErrors("node", main, [
  ["--route", "medium"],
  ["--rounds", "0"],
  ["--rounds", "1.5"],
  ["--seconds", "0"],
  ["--seconds", "0.3"],
  ["--connections", "-1"],
  ["--connections", "1,0"],
  ["--connections", "1,,16"],
  ["--connections", "16,x"],
  ["--connections", "1025"],
  ["--route", "report"],
  ["--only", "inline,nope"],
  ["--only", ""],
  ["--only"],
  ["--what"],
])

// Other engineers may run the bench at the same time: what this file started carries a mark in its environment.
const MARK = `${process.pid}-${Date.now()}`
const leftovers = () => processesWithEnv("SLOTBUS_NODE_BENCH_TEST", MARK)

async function bench(more: Record<string, string>, ...argv: string[]) {
  const r = await run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "node", ...argv], {
    cwd: repo,
    env: { ...process.env, SLOTBUS_NODE_BENCH_TEST: MARK, ...more },
    timeoutMs: 170_000,
  })
  expect({ code: r.code, stderr: r.code ? r.stderr : "" }).toEqual({ code: 0, stderr: "" })
  return r.stdout.split("\n")
}

/** The lines of each `## …` section, by its heading. */
function sections(lines: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let at: string[] | null = null
  for (const l of lines)
    if (l.startsWith("## ")) out.set(l.slice(3), (at = []))
    else at?.push(l)
  return out
}

/** The cells of the table rows that start with `| <name> |`, by name. */
function rows(lines: string[], names: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const l of lines) {
    const cells = l.split("|").map((c) => c.trim())
    if (names.includes(cells[1]!)) out.set(cells[1]!, cells.slice(2, -1))
  }
  return out
}

const number = (cell: string) => Number(cell.replace(/ \(.*\)$/, "").replaceAll(",", ""))

const node = findNode()
const skip = node === null ? `no Node >= 26.1 here (${NODE_INSTALL})` : toolSkipReason("wrk")
sayWhySkipped("slotbus bench node", skip)

const VARIANTS = ["inline", "piscina", "cluster", "slotbus", "slotbus-reply", "slotbus-rpc", "slotbus-call"]

/** A table of the heavy, small or page route: a row per variant in order, every figure read, ratios, no error. */
function expectTable(lines: string[], unit: "ms" | "µs", variants = VARIANTS) {
  expect(lines).toContain(
    `| variant | req/s | p50 ${unit} | p99 ${unit} | CPU ${unit}/req: front | workers | front + workers | errors |`,
  )
  const got = rows(lines, variants)
  expect([...got.keys()]).toEqual(variants)
  for (const [name, [rps, p50, p99, front, workers, total, errors]] of got) {
    for (const cell of [rps!, p50!, p99!, total!]) expect(number(cell)).toBeGreaterThan(0)
    // cluster's front is its primary, which only hands connections out: its CPU a request may read 0
    if (name === "cluster") expect(number(front!)).toBeGreaterThanOrEqual(0)
    else expect(number(front!)).toBeGreaterThan(0)
    if (name === "inline" || name === "piscina") expect(workers).toBe("—")
    else expect(number(workers!)).toBeGreaterThan(0)
    expect(errors).toBe("0")
    const ratios = [rps, total].map((c) => /\(([\d.]+)×\)$/.exec(c!)?.[1])
    if (name === "cluster" || !variants.includes("cluster")) expect(ratios).toEqual([undefined, undefined])
    else for (const r of ratios) expect(Number(r)).toBeGreaterThan(0)
  }
}

test.skipIf(skip !== null)(
  "the report route: a row per variant with req/s, p50, p99 and CPU per request read, ratios to cluster, no error",
  async () => {
    const lines = await bench({}, "--seconds", "1", "--rounds", "1", "--connections", "16")
    const tables = sections(lines)
    const heading =
      "the report route (~2.5 ms of CPU, ~50 KB), 16 connections; in brackets the median ratio to cluster in the same round"
    expect([...tables.keys()]).toEqual([heading])
    expectTable(tables.get(heading)!, "ms")
    expect(lines.some((l) => l.startsWith("could not run"))).toBe(false)
    expect(leftovers()).toEqual([])
  },
  180_000,
)

test.skipIf(skip !== null)(
  "--route small and page: bench carry's answers through every variant, a table per connection count, in µs",
  async () => {
    for (const [route, what] of [
      ["small", "a small JSON object"],
      ["page", "a cached 20–60 KB page"],
    ] as const) {
      const only = route === "small" ? VARIANTS : ["inline", "cluster", "slotbus-call"]
      const lines = await bench(
        {},
        "--route",
        route,
        "--seconds",
        "1",
        "--rounds",
        "1",
        "--connections",
        "1,2",
        "--only",
        only.join(","),
      )
      const tables = sections(lines)
      const tail = "; in brackets the median ratio to cluster in the same round"
      expect([...tables.keys()]).toEqual([`${what}, 1 connection${tail}`, `${what}, 2 connections${tail}`])
      for (const t of tables.values()) expectTable(t, "µs", only)
      expect(lines.some((l) => l.startsWith("could not run"))).toBe(false)
      expect(leftovers()).toEqual([])
    }
  },
  180_000,
)

test.skipIf(skip !== null)(
  "--route cheap: /cheap's latency under the saturated report route, and the round trips of piscina and slotbus",
  async () => {
    const lines = await bench({}, "--route", "cheap", "--seconds", "1", "--rounds", "1")
    const got = rows(lines, ["inline", "piscina", "slotbus", "slotbus-call"])
    expect([...got.keys()]).toEqual(["inline", "piscina", "slotbus", "slotbus-call"])
    for (const cells of got.values()) {
      expect(cells).toHaveLength(4)
      for (const c of cells) expect(number(c)).toBeGreaterThan(0)
    }
    const ways = ["piscina.run", "slotbus bus.remote().small", "slotbus bus.call"]
    const trips = rows(lines, ways)
    expect([...trips.keys()]).toEqual(ways)
    for (const [p50, p99, calls] of trips.values()) {
      expect(number(p50!)).toBeGreaterThan(0)
      expect(number(p99!)).toBeGreaterThanOrEqual(number(p50!))
      expect(calls).toBe("1,000")
    }
    expect(leftovers()).toEqual([])
  },
  180_000,
)

test("without Node it says so with the install line and measures nothing", async () => {
  const missing = join(tmpdir(), `slotbus-no-node-${MARK}`)
  const lines = await bench({ SLOTBUS_NODE: missing }, "--seconds", "1", "--rounds", "1")
  expect(lines[0]).toBe(`slotbus bench node: skipped, SLOTBUS_NODE=${missing} is not a node >= 26.1: ${NODE_INSTALL}`)
  expect(lines.some((l) => l.startsWith("|"))).toBe(false)
})
