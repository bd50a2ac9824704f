import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs, parseSize, UsageError } from "../../bench/cli.ts"
import { describeMachine } from "../../bench/lib/machine.ts"
import { CDF_PERCENTILES, jsonIdleLine, jsonLine, renderHtml, renderTable, type BenchReport, type MethodInfo, type Row } from "../../bench/report.ts"

const repo = join(import.meta.dir, "..", "..")
const bin = join(repo, "bin", "slotbus.ts")
const REQUIRED = ["name", "mode", "size", "inflight", "p50_us", "p99_us", "msgs_per_s", "cpu_s"]

function cli(args: string[], timeout = 30_000) {
  const p = Bun.spawnSync([process.execPath, bin, ...args], { cwd: repo, stdout: "pipe", stderr: "pipe", timeout })
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() }
}

/** Checks that a page needs nothing from outside itself. */
function expectSelfContained(html: string) {
  expect(html).not.toMatch(/<script\b/i)
  expect(html).not.toMatch(/<link\b/i)
  expect(html).not.toMatch(/<img\b/i)
  expect(html).not.toMatch(/\b(src|href)\s*=/i)
  expect(html).not.toMatch(/url\(/i)
  expect(html).not.toMatch(/https?:\/\//i)
  expect(html).not.toMatch(/@import/i)
}

describe("option parsing", () => {
  test("with no options it measures 64 B, 4 KiB, 64 KiB and 1 MiB and writes only the table", () => {
    const o = parseArgs([])
    expect(o.sizes).toEqual([64, 4096, 65536, 1048576])
    expect(o).toMatchObject({ quick: false, json: null, html: null, only: null, help: false })
    expect(o.latencyMs).toBeGreaterThan(0)
    expect(o.throughputMs).toBeGreaterThan(0)
    expect(o.idleMs).toBeGreaterThan(0)
  })

  test("--quick measures fewer sizes for a shorter time", () => {
    const full = parseArgs([])
    const quick = parseArgs(["--quick"])
    expect(quick.sizes.length).toBeLessThan(full.sizes.length)
    expect(quick.latencyMs).toBeLessThan(full.latencyMs)
    expect(quick.throughputMs).toBeLessThan(full.throughputMs)
    expect(quick.idleMs).toBeLessThan(full.idleMs)
  })

  test("--sizes takes bytes with k and m suffixes, in either option form, without duplicates", () => {
    expect(parseArgs(["--sizes", "64,4k,64k,1m"]).sizes).toEqual([64, 4096, 65536, 1048576])
    expect(parseArgs(["--sizes=1KiB,2MB,16"]).sizes).toEqual([1024, 2097152, 16])
    expect(parseArgs(["--quick", "--sizes", "4k,4096"]).sizes).toEqual([4096])
  })

  test.each([
    ["64", 64],
    ["4k", 4096],
    ["4K", 4096],
    ["64kb", 65536],
    ["1m", 1048576],
    ["1MiB", 1048576],
    ["0.5k", 512],
  ])("the size %p is %p bytes", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes)
  })

  test.each([
    [["--sizes", "0"]],
    [["--sizes", "abc"]],
    [["--sizes", "32m"]],
    [["--sizes", "-4k"]],
    [["--sizes", ","]],
    [["--sizes"]],
    [["--time", "0"]],
    [["--time", "fast"]],
    [["--idle", "-1"]],
    [["--only", "carrier-pigeon"]],
    [["--html"]],
    [["--html", "--quick"]],
    [["--c-worker"]],
    [["--bogus"]],
    [["extra"]],
  ])("%p is refused with a usage error", (args) => {
    expect(() => parseArgs(args)).toThrow(UsageError)
  })

  test("--json writes to stdout unless a file follows it", () => {
    expect(parseArgs(["--json"]).json).toBe("-")
    expect(parseArgs(["--json", "--quick"])).toMatchObject({ json: "-", quick: true })
    expect(parseArgs(["--json", "out.jsonl"]).json).toBe("out.jsonl")
    expect(parseArgs(["--json=out.jsonl"]).json).toBe("out.jsonl")
    expect(parseArgs(["--html", "r.html"]).html).toBe("r.html")
  })

  test("--only takes method names, name:mode pairs and idle", () => {
    expect(parseArgs(["--only", "slotbus,unix:stream,idle"]).only).toEqual(["slotbus", "unix:stream", "idle"])
  })

  test("--time sets the 1-in-flight time and derives the others from it; --idle 0 skips the idle test", () => {
    const o = parseArgs(["--time", "300", "--idle", "0"])
    expect(o.latencyMs).toBe(300)
    expect(o.throughputMs).toBe(200)
    expect(o.warmupMs).toBe(50)
    expect(o.idleMs).toBe(0)
  })
})

describe("the command line", () => {
  test("slotbus --help and slotbus bench --help print usage and exit 0", () => {
    const top = cli(["--help"])
    expect(top.code).toBe(0)
    expect(top.stdout).toContain("bench")
    const bench = cli(["bench", "--help"])
    expect(bench.code).toBe(0)
    expect(bench.stdout).toContain("--sizes")
    expect(bench.stdout).toContain("--json")
    expect(bench.stdout).toContain("--html")
  })

  test("an unknown command or option exits 2 and says what was wrong", () => {
    const cmd = cli(["frobnicate"])
    expect(cmd.code).toBe(2)
    expect(cmd.stderr).toContain("frobnicate")
    const opt = cli(["bench", "--sizes", "0"])
    expect(opt.code).toBe(2)
    expect(opt.stderr).toContain("out of range")
  })

  test("--json without a file streams JSON lines to stdout and moves the table to stderr", () => {
    const r = cli(["bench", "--quick", "--only", "worker", "--sizes", "64", "--idle", "0", "--json"])
    expect(r.code).toBe(0)
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l))
    expect(rows.map((x) => x.inflight)).toEqual([1, 32])
    for (const row of rows) for (const k of REQUIRED) expect(row).toHaveProperty(k)
    expect(r.stderr).toContain("Worker postMessage")
  })
})

describe("report formats", () => {
  const methods: MethodInfo[] = [
    { id: "floor:spin", name: "floor", mode: "spin", label: "floor spin", peers: "C↔C" },
    { id: "slotbus:adaptive", name: "slotbus", mode: "adaptive", label: "slotbus adaptive", peers: "Bun↔Bun" },
    { id: "unix:stream", name: "unix", mode: "stream", label: "unix <socket> & \"quotes\"", peers: "Bun↔Bun" },
  ]
  const row = (m: MethodInfo, size: number, inflight: number, p50: number): Row => ({
    name: m.name, mode: m.mode, size, inflight, count: 1000, elapsed_s: 0.5,
    p50_us: p50, p90_us: p50 * 1.2, p99_us: p50 * 2, p999_us: p50 * 3, max_us: p50 * 10,
    msgs_per_s: (inflight * 1e6) / p50, hub_cpu_s: 0.4, worker_cpu_s: 0.3,
    cdf: CDF_PERCENTILES.map((p) => [p, p50 * (0.5 + p / 50)] as [number, number]),
  })
  const report: BenchReport = {
    machine: { ...describeMachine(), loadBefore: 9 },
    warnings: ["the system was busy before the start"],
    settings: { sizes: [64, 65536], warmupMs: 10, latencyMs: 60, throughputMs: 40, quick: true },
    methods,
    rows: methods.flatMap((m, i) => [64, 65536].flatMap((size) => [1, 32].map((n) => row(m, size, n, (i + 1) * (size > 64 ? 20 : 2))))),
    idle: { hub_cpu_s: 0.004, worker_cpu_s: 0.001, elapsed_s: 2 },
    notes: ["slotbus adaptive (Bun↔C): skipped: no C compiler"],
    wallS: 12,
  }

  test("every measurement is one JSON line with the documented fields", () => {
    for (const r of report.rows) {
      const parsed = JSON.parse(jsonLine(r, methods.find((m) => m.name === r.name)!))
      for (const k of REQUIRED) expect(parsed).toHaveProperty(k)
      expect(parsed.cpu_s).toBeCloseTo(0.7, 6)
    }
    expect(JSON.parse(jsonIdleLine(report.idle!))).toMatchObject({ name: "slotbus", mode: "park-idle", cpu_s: 0.005 })
  })

  test("the table states the machine, warns about a busy system and gives ratios to slotbus", () => {
    const table = renderTable(report)
    expect(table).toContain(`Bun ${Bun.version}`)
    expect(table).toContain(`${report.machine.cores} cores`)
    expect(table).toContain("WARNING: the system was busy")
    expect(table).toContain("×sb")
    expect(table).toContain("1.5×") // unix p50 over slotbus adaptive's
    expect(table).toContain("3.0×") // and over the floor's
    expect(table).toContain("note: slotbus adaptive (Bun↔C): skipped")
    expect(table).toContain("idle")
  })

  test("the HTML page is self-contained, escapes labels and has one latency plot per method", () => {
    const html = renderHtml(report)
    expectSelfContained(html)
    expect(html).toContain("&#60;socket&#62;")
    expect(html).not.toContain("<socket>")
    const plots = [...html.matchAll(/<figure class="cdf" data-method="([^"]+)"/g)].map((m) => m[1])
    expect(plots).toEqual(methods.map((m) => m.id))
    expect(html.match(/<figure class="bars"/g)?.length).toBe(2)
    expect(html).toContain(report.machine.cpu)
    expect(html).toContain("busy")
  })
})

describe("a --quick run", () => {
  let dir = ""
  let run: ReturnType<typeof cli>
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "slotbus-bench-test-"))
    run = cli(["bench", "--quick", "--json", join(dir, "out.jsonl"), "--html", join(dir, "report.html")], 90_000)
  }, 100_000)
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test("completes and prints the table with the machine and the notes", () => {
    if (run.code !== 0) console.error(run.stderr)
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("slotbus bench ·")
    expect(run.stdout).toContain(`Bun ${Bun.version}`)
    expect(run.stdout).toContain("slotbus adaptive")
    expect(run.stdout).toContain("process.send")
  })

  test("writes JSON lines that parse, with every method at 1 and 32 in flight", () => {
    const lines = readFileSync(join(dir, "out.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    const measured = lines.filter((l) => l.mode !== "park-idle")
    for (const l of measured) {
      for (const k of REQUIRED) expect(l).toHaveProperty(k)
      expect(l.msgs_per_s).toBeGreaterThan(0)
    }
    const names = new Set(measured.map((l) => l.name))
    for (const n of ["slotbus", "process.send", "unix", "tcp", "http", "worker"]) expect(names).toContain(n)
    expect(new Set(measured.map((l) => l.inflight))).toEqual(new Set([1, 32]))
    expect(lines.filter((l) => l.mode === "park-idle").length).toBe(1)
  })

  test("writes a self-contained HTML report with one latency plot per measured method", () => {
    const html = readFileSync(join(dir, "report.html"), "utf8")
    expectSelfContained(html)
    const lines = readFileSync(join(dir, "out.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    const methods = new Set(lines.filter((l) => l.inflight === 1).map((l) => `${l.name}:${l.mode}`))
    const plots = [...html.matchAll(/<figure class="cdf" data-method="([^"]+)"/g)].map((m) => m[1])
    expect(new Set(plots)).toEqual(methods)
    expect(plots.length).toBe(methods.size)
  })
})
