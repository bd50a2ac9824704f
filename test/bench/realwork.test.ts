// `slotbus bench realwork`: its options, and its smallest run as JSON: the machine, the work alone, and every variant
// on every route with requests, latencies and CPU per process (no timing asserts); no front or worker left after.
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import {
  type CeilingRow,
  main,
  type MachineRow,
  pageCeiling,
  ROUTES,
  VARIANTS,
  type VariantRow,
  type WorkRow,
  workCpuMs,
} from "../../bench/realwork/cli.ts"
import { benchProcesses, usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const repo = join(import.meta.dir, "..", "..")

usageErrors("realwork", main, [
  ["--only", "nope"],
  ["--only", ""],
  ["--seconds", "0"],
  ["--seconds", "1.5"],
  ["--rounds", "0"],
  ["--route", "both"],
  ["--load", "-1"],
  ["--client", "curl"],
  ["--rounds"],
  ["--what"],
  ["--only", "direct", "--route", "page,thumb"],
])

const leftovers = () => benchProcesses("realwork")

/** A row of `variant` on `route` costing `total` ms of CPU per request, all of it the front's. */
const rowOf = (variant: keyof typeof VARIANTS, route: (typeof ROUTES)[number], total: number): VariantRow => ({
  kind: "variant",
  variant,
  name: VARIANTS[variant],
  route,
  rounds: 1,
  requests: 1000,
  errors: 0,
  rps: 1000 / total,
  p50ms: total,
  p99ms: total,
  cpuMs: { front: total, workers: [], total },
  faults: { front: 0, workers: 0 },
  overheadMs: total,
  vsProxy: null,
  vsCluster: null,
})

test("the page route's ceiling takes direct's carrying as its floor, and is not made without direct's cached row", () => {
  const proxy = [rowOf("proxy", "page", 4), rowOf("proxy", "cached", 0.3)]
  // Worker threads pay Bun.serve's late write too: their cached row is no floor
  expect(pageCeiling([...proxy, rowOf("threads", "cached", 0.2)])).toBeNull()
  const c = pageCeiling([...proxy, rowOf("threads", "cached", 0.2), rowOf("direct", "cached", 0.1)])!
  expect(c).toMatchObject({ kind: "ceiling", proxyPageMs: 4, proxyCarryMs: 0.3, floor: "direct", floorCarryMs: 0.1 })
  expect(c.vsProxy * (4 - (0.3 - 0.1))).toBeCloseTo(4, 9)
})

async function realwork(...argv: string[]) {
  const r = await run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "realwork", "--json", ...argv], {
    cwd: repo,
    timeoutMs: 150_000,
  })
  expect(r.stderr).toBe("")
  expect(r.code).toBe(0)
  const lines = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as MachineRow | WorkRow | VariantRow | CeilingRow)
  return {
    head: lines[0] as MachineRow,
    work: lines[1] as WorkRow,
    rows: lines.filter((x) => x.kind === "variant"),
    ceilings: lines.filter((x) => x.kind === "ceiling"),
  }
}

const wrkSkip = toolSkipReason("wrk")
sayWhySkipped("slotbus bench realwork --json", wrkSkip)

describe.skipIf(wrkSkip !== null)("with wrk", () => {
  test("--seconds 1 --rounds 1 --json: the work alone, then every variant on its routes with figures per process", async () => {
    const { head, work, rows, ceilings } = await realwork("--seconds", "1", "--rounds", "1")
    expect(head.kind).toBe("machine")
    expect(head).toMatchObject({ client: "wrk", clients: 16, seconds: 1, rounds: 1, load: 0 })
    expect(work.kind).toBe("work")
    expect(work.pages).toBeGreaterThanOrEqual(64)
    expect(work.pageCpuMs).toBeGreaterThan(0)
    expect(work.pageBytes.min).toBeGreaterThanOrEqual(20_000)
    expect(work.pageBytes.max).toBeLessThanOrEqual(60_000)
    expect(work.thumbBytes).toBe(5 * 1024 * 1024)
    // direct (the front answering itself) runs on the cached route only
    expect(rows.map((x) => `${x.route} ${x.variant}`)).toEqual(
      ROUTES.flatMap((route) =>
        Object.keys(VARIANTS)
          .filter((v) => v !== "direct" || route === "cached")
          .map((v) => `${route} ${v}`),
      ),
    )
    for (const x of rows) {
      expect(x.kind).toBe("variant")
      expect(x.rounds).toBe(1)
      expect(x.requests).toBeGreaterThan(0)
      for (const v of [x.rps, x.p50ms, x.p99ms, x.cpuMs.total]) expect(v).toBeGreaterThan(0)
      // reusePort has no front in the path: the process that started its workers only waits
      if (x.variant === "cluster") expect(x.cpuMs.front).toBeGreaterThanOrEqual(0)
      else expect(x.cpuMs.front).toBeGreaterThan(0)
      expect(x.p99ms).toBeGreaterThanOrEqual(x.p50ms)
      expect(x.cpuMs.workers.length).toBe(x.variant === "direct" ? 0 : 4)
      for (const w of x.cpuMs.workers) expect(w).toBeGreaterThanOrEqual(0)
      // minor page faults per request of the front and the workers, read from /proc: present, never negative
      expect(x.faults.front).toBeGreaterThanOrEqual(0)
      expect(x.faults.workers).toBeGreaterThanOrEqual(0)
      expect(x.cpuMs.total).toBeCloseTo(x.cpuMs.front + x.cpuMs.workers.reduce((a, b) => a + b, 0), 6)
      expect(x.overheadMs).toBeCloseTo(x.cpuMs.total - workCpuMs(x.route, work), 6)
      expect(x.vsProxy).not.toBeNull()
      if (x.variant === "proxy") expect(x.vsProxy).toEqual({ rps: 1, cpu: 1 })
      expect(x.vsCluster).not.toBeNull()
      if (x.variant === "cluster") expect(x.vsCluster).toEqual({ rps: 1, cpu: 1 })
    }
    // the page route's ceiling, made of the proxy's page and cached rows and direct's cached row (the floor), last
    const total = (variant: string, route: string) =>
      rows.find((x) => x.variant === variant && x.route === route)!.cpuMs.total
    expect(ceilings.length).toBe(1)
    const c = ceilings[0]!
    expect(c).toMatchObject({
      proxyPageMs: total("proxy", "page"),
      proxyCarryMs: total("proxy", "cached"),
      floor: "direct",
      floorCarryMs: total("direct", "cached"),
    })
    expect(c.vsProxy * (c.proxyPageMs - (c.proxyCarryMs - c.floorCarryMs))).toBeCloseTo(c.proxyPageMs, 6)
    expect(leftovers()).toEqual([])
  }, 180_000)

  test("--load 1 --only fetch --route page: the burner runs through it, one row, nothing left", async () => {
    const { head, rows, ceilings } = await realwork(
      "--seconds",
      "1",
      "--rounds",
      "1",
      "--load",
      "1",
      "--only",
      "fetch",
      "--route",
      "page",
    )
    expect(head.load).toBe(1)
    expect(rows.map((x) => `${x.route} ${x.variant}`)).toEqual(["page fetch"])
    for (const x of rows) expect([x.vsProxy, x.vsCluster]).toEqual([null, null])
    expect(ceilings).toEqual([]) // no proxy, no direct, no cached route: nothing to make it of
    expect(leftovers()).toEqual([])
  }, 180_000)
})
