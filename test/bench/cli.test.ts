import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { rotation } from "../../bench/slots/cli.ts"
import { SETTLE_WINDOW_MS, SETTLE_WINDOWS } from "../../bench/slots/settle.ts"
import { parseArgs, parseSize, UsageError } from "../../bench/slots/options.ts"
import { describeMachine } from "../../bench/lib/machine.ts"
import { run as runCmd, type RunResult } from "../support/helpers.ts"
import { median, range, Samples } from "../../bench/lib/samples.ts"
import {
  CDF_PERCENTILES,
  renderTable,
  TABLE_WIDTH,
  verdict,
  type BenchReport,
  type Figures,
  type MethodInfo,
  type Row,
} from "../../bench/slots/report.ts"
import { renderHtml } from "../../bench/slots/report-html.ts"
import { jsonHeader, jsonIdleLine, jsonLine, renderJson } from "../../bench/slots/report-json.ts"

const repo = join(import.meta.dir, "..", "..")
const bin = join(repo, "bin", "slotbus.ts")
const REQUIRED = ["name", "mode", "size", "inflight", "p50_us", "p99_us", "msgs_per_s", "cpu_s"]

const cli = (args: string[], timeoutMs = 30_000) => runCmd([process.execPath, bin, ...args], { cwd: repo, timeoutMs })
/** `slotbus bench --quick --sizes 64 --idle 0 --json` and `args`: the run, its header record and its rows (none if it failed). */
async function quickJson(args: string[]) {
  const r = await cli(["bench", "--quick", ...args, "--sizes", "64", "--idle", "0", "--json"])
  const [head, ...rows] =
    r.code === 0
      ? r.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l))
      : []
  return { r, head, rows }
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
    expect(o).toMatchObject({ quick: false, json: null, html: null, only: null, help: false, wide: false, load: 0 })
    expect(o.rounds).toBeGreaterThanOrEqual(3)
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
    expect(quick.rounds).toBeLessThanOrEqual(full.rounds)
  })

  test("--rounds, --load and --wide are read in either option form", () => {
    expect(parseArgs(["--rounds", "7"]).rounds).toBe(7)
    expect(parseArgs(["--rounds=1"]).rounds).toBe(1)
    expect(parseArgs(["--load", "2"]).load).toBe(2)
    expect(parseArgs(["--load=0"]).load).toBe(0)
    expect(parseArgs(["--wide"]).wide).toBe(true)
  })

  test("each round starts one method further along", () => {
    expect(rotation(["a", "b", "c"], 0)).toEqual(["a", "b", "c"])
    expect(rotation(["a", "b", "c"], 1)).toEqual(["b", "c", "a"])
    expect(rotation(["a", "b", "c"], 5)).toEqual(["c", "a", "b"])
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
    [["--warm", "-5"]],
    [["--warm", "soon"]],
    [["--rounds", "0"]],
    [["--rounds", "2.5"]],
    [["--rounds"]],
    [["--load", "-1"]],
    [["--load", "many"]],
    [["--load", "1000"]],
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
  test("slotbus --help and slotbus bench --help print usage and exit 0", async () => {
    const top = await cli(["--help"])
    expect(top.code).toBe(0)
    expect(top.stdout).toContain("bench")
    const bench = await cli(["bench", "--help"])
    expect(bench.code).toBe(0)
    expect(bench.stdout).toContain("--sizes")
    expect(bench.stdout).toContain("--json")
    expect(bench.stdout).toContain("--html")
  })

  test("slotbus --help and CONTRIBUTING.md name every bench room bench/cli.ts runs", async () => {
    const rooms = [...readFileSync(join(repo, "bench", "cli.ts"), "utf8").matchAll(/case "([a-z]+)":/g)].map(
      (m) => m[1]!,
    )
    expect(rooms).toContain("carry")
    const top = await cli(["--help"])
    const contributing = readFileSync(join(repo, "CONTRIBUTING.md"), "utf8")
    for (const room of rooms) {
      expect({ room, usage: top.stdout.includes(`bench ${room} `) }).toEqual({ room, usage: true })
      expect({ room, contributing: contributing.includes(`${room}/`) }).toEqual({ room, contributing: true })
    }
  })

  test("an unknown command or option exits 2 and says what was wrong", async () => {
    const cmd = await cli(["frobnicate"])
    expect(cmd.code).toBe(2)
    expect(cmd.stderr).toContain("frobnicate")
    const opt = await cli(["bench", "--sizes", "0"])
    expect(opt.code).toBe(2)
    expect(opt.stderr).toContain("out of range")
    expect(opt.stderr.trim().split("\n")).toHaveLength(1) // one line, no usage dump, no stack
  })

  test("--json without a file writes a header record and JSON lines to stdout and moves the table to stderr", async () => {
    const { r, head, rows } = await quickJson(["--rounds", "2", "--only", "worker"])
    expect(r.code).toBe(0)
    expect(head).toMatchObject({ type: "header", versions: { bun: Bun.version }, settings: { rounds: 2 } })
    expect(rows.map((x) => x.inflight)).toEqual([1, 32])
    for (const row of rows) for (const k of REQUIRED) expect(row).toHaveProperty(k)
    for (const row of rows) expect(row.rounds.length).toBe(2)
    expect(r.stderr).toContain("Worker postMessage")
  })

  test("a fresh pair is warmed until its compilers are done, --warm at least; the header and legend say so", async () => {
    expect(parseArgs([]).jitWarmupMs).toBe(0)
    expect(parseArgs([]).cold).toBe(false)
    const { r, head } = await quickJson(["--rounds", "1", "--warm", "200", "--only", "worker"])
    expect(r.code).toBe(0)
    expect(head.settings.jitWarmupMs).toBe(200)
    expect(head.methods[0].warm_ms).toHaveLength(1)
    expect(head.methods[0].warm_ms[0]).toBeGreaterThanOrEqual(200)
    const legend = r.stderr.replace(/\s+/g, " ")
    expect(legend).toContain("first exchanged traffic at each size until its compilers were done with it")
    expect(legend).toContain("at least 200 ms (--warm)")
  })

  test("--cold measures each pair as it starts, and says so; with --warm it is a usage error", async () => {
    expect(parseArgs(["--cold"]).cold).toBe(true)
    expect(() => parseArgs(["--cold", "--warm", "100"])).toThrow("--cold measures each pair without warming it up")
    const r = await cli(["bench", "--quick", "--rounds", "1", "--cold", "--only", "worker", "--sizes", "64"])
    expect(r.code).toBe(0)
    expect(r.stdout.replace(/\s+/g, " ")).toContain(
      "each pair was measured as it started, its compilers still at work (--cold)",
    )
  })

  test("--only backends measures a backend's hub in a child process of its own, warmed as every pair is", async () => {
    const { r, head, rows } = await quickJson(["--rounds", "1", "--only", "backends:posix-spin"])
    expect(r.code).toBe(0)
    expect(head.notes).toEqual([])
    expect(rows.map((x) => `${x.name}:${x.mode} ${x.inflight}`)).toEqual([
      "backends:posix-spin 1",
      "backends:posix-spin 32",
    ])
    // one hub for the round, driven line by line (bench/slots/line-hub.ts), warmed at its size: not a fresh pair for
    // each measurement, as it was
    expect(head.methods[0].warm_ms).toHaveLength(1)
    expect(head.methods[0].warm_ms[0]).toBeGreaterThanOrEqual(SETTLE_WINDOWS * SETTLE_WINDOW_MS)
    for (const row of rows) expect(row.msgs_per_s).toBeGreaterThan(0)
  })

  test("--load starts CPU burners and the header says so", async () => {
    const { r, head } = await quickJson(["--rounds", "1", "--load", "1", "--only", "worker"])
    expect(r.code).toBe(0)
    expect(head.load.burners).toBe(1)
    expect(r.stderr).toContain("LOAD: 1 CPU burner process")
  })
})

describe("report formats", () => {
  const methods: MethodInfo[] = [
    { id: "floor:spin", name: "floor", mode: "spin", label: "C floor spin", peers: "C↔C" },
    { id: "floor-bun:spin", name: "floor-bun", mode: "spin", label: "Bun floor spin", peers: "Bun↔Bun" },
    { id: "slotbus:adaptive", name: "slotbus", mode: "adaptive", label: "slotbus adaptive", peers: "Bun↔Bun" },
    { id: "process.send:advanced", name: "process.send", mode: "advanced", label: "process.send", peers: "Bun↔Bun" },
    { id: "unix:stream", name: "unix", mode: "stream", label: 'unix <socket> & "quotes"', peers: "Bun↔Bun" },
  ]
  // Three rounds whose figures differ, so medians and ranges can be told apart.
  const SPREAD = [1, 0.8, 1.3]
  const figures = (inflight: number, p50: number): Figures => ({
    count: 1000,
    elapsed_s: 0.5,
    p50_us: p50,
    p90_us: p50 * 1.2,
    p99_us: p50 * 2,
    p999_us: p50 * 3,
    max_us: p50 * 10,
    msgs_per_s: (inflight * 1e6) / p50,
    hub_cpu_s: 0.4,
    worker_cpu_s: 0.3,
  })
  const row = (m: MethodInfo, size: number, inflight: number, p50: number): Row => ({
    name: m.name,
    mode: m.mode,
    size,
    inflight,
    ...figures(inflight, p50),
    rounds: SPREAD.map((k) => figures(inflight, p50 * k)),
    cdf: CDF_PERCENTILES.map((p) => [p, p50 * (0.5 + p / 50)] as [number, number]),
  })
  // p50 at 64 B: floor 2, Bun floor 4, slotbus 6, process.send 8, unix 10 µs (×10 at 64 KiB)
  const report: BenchReport = {
    machine: { ...describeMachine(), loadBefore: 9 },
    warnings: ["the system was busy before the start"],
    settings: { sizes: [64, 65536], rounds: 3, warmupMs: 10, latencyMs: 60, throughputMs: 40, quick: true, load: 0 },
    methods,
    rows: methods.flatMap((m, i) =>
      [64, 65536].flatMap((size) => [1, 32].map((n) => row(m, size, n, (i + 1) * (size > 64 ? 20 : 2)))),
    ),
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

  test("the verdict comes first: slotbus against process.send and the unix socket, p50 and 32 in flight, with ranges", () => {
    const v = verdict(report)
    expect(renderTable(report).split("\n")[0]).toBe(v)
    expect(v).toContain("64 B")
    expect(v).toContain("3 rounds")
    // p50 ratios are the same in every round (1.3× process.send, 1.7× unix), msg/s ratios too
    expect(v).toContain("1.3× (1.3–1.3×) faster than process.send at p50")
    expect(v).toContain("1.7× (1.7–1.7×) faster than the unix socket at p50")
    expect(v).toContain("its msg/s at 32 in flight")
  })

  test("the verdict says so when a rival was not measured, and reads a slower slotbus as slower", () => {
    const noUnix = {
      ...report,
      methods: methods.filter((m) => m.name !== "unix"),
      rows: report.rows.filter((r) => r.name !== "unix"),
    }
    expect(verdict(noUnix)).toContain("the unix socket: not measured")
    const slow = {
      ...report,
      rows: report.rows.map((r) =>
        r.name === "slotbus" ? { ...r, rounds: r.rounds.map((f) => f && { ...f, p50_us: f.p50_us * 4 }) } : r,
      ),
    }
    expect(verdict(slow)).toMatch(/slower than process\.send at p50/)
  })

  test("the default table fits 100 columns and has a unit in every header; --wide adds columns", () => {
    const narrow = renderTable(report)
    for (const line of narrow.split("\n").slice(1)) expect(line.length).toBeLessThanOrEqual(TABLE_WIDTH)
    const titles = narrow.split("\n").find((l) => l.startsWith("method"))!
    for (const t of ["p50 µs", "range µs", "×sb p50", "×floor C", "×floor Bun", "msg/s @32", "range msg/s", "×sb @32"])
      expect(titles).toContain(t)
    const wide = renderTable(report, true)
    const wideTitles = wide.split("\n").find((l) => l.startsWith("method"))!
    expect(wideTitles.length).toBeGreaterThan(TABLE_WIDTH)
    for (const t of ["peers", "p99 µs", "p99.9 µs", "msg/s @1", "cpu hub s", "GB/s"]) expect(wideTitles).toContain(t)
  })

  test("the table states the machine, warns about a busy system and gives medians, ranges and ratios", () => {
    const table = renderTable(report)
    expect(table).toContain(`Bun ${Bun.version}`)
    expect(table).toContain(`${report.machine.cores} cores`)
    expect(table).toContain("WARNING: the system was busy")
    expect(table).toMatch(/unix <socket> &[^\n]*…\s+10.0\s+8.00–13.0 /) // unix p50 median and its range across rounds, label cut to fit
    expect(table).toContain("2.5×") // unix p50 over the Bun floor's
    expect(table).toContain("5.0×") // and over the C floor's
    expect(table).toContain("note: slotbus adaptive (Bun↔C): skipped")
    expect(table).toContain("idle")
  })

  test("a --load run says so in the table's header and the JSON header", () => {
    const loaded = { ...report, settings: { ...report.settings, load: 2 } }
    expect(renderTable(loaded)).toContain("LOAD: 2 CPU burner processes")
    expect(JSON.parse(jsonHeader(loaded)).load.burners).toBe(2)
    expect(verdict(loaded)).toContain("2 CPU burners")
  })

  test("the JSON begins with a header record: machine, versions, settings, warnings, verdict", () => {
    const [head, ...rest] = renderJson(report)
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
    expect(head).toMatchObject({
      type: "header",
      versions: { bun: Bun.version },
      machine: { cores: report.machine.cores },
    })
    expect(head.versions.slotbus).toMatch(/^\d+\.\d+\.\d+/)
    expect(head.warnings).toEqual(report.warnings)
    expect(head.verdict).toBe(verdict(report))
    expect(head.settings.rounds).toBe(3)
    expect(rest.filter((l) => l.type === "measurement").length).toBe(report.rows.length)
    expect(rest.at(-1)).toMatchObject({ type: "idle", mode: "park-idle" })
    const unix = rest.find((l) => l.name === "unix" && l.size === 64 && l.inflight === 1)
    expect(unix.p50_us_range).toEqual([8, 13])
  })

  test("the HTML page is self-contained, escapes labels, has one overlay CDF per size and zero-based bars", () => {
    const html = renderHtml(report)
    expectSelfContained(html)
    expect(html).toContain("&#60;socket&#62;")
    expect(html).not.toContain("<socket>")
    const cdfs = [...html.matchAll(/<figure class="cdf" data-size="(\d+)"/g)].map((m) => Number(m[1]))
    expect(cdfs).toEqual([64, 65536])
    // every method is on each size's plot
    const first = html.slice(
      html.indexOf('<figure class="cdf"'),
      html.indexOf("</figure>", html.indexOf('<figure class="cdf"')),
    )
    expect(first.match(/<polyline/g)?.length).toBe(methods.length)
    expect(html).toContain("round-trip time, 1 request in flight (log scale)")
    expect(html).toContain("share of round trips at or below (percentile)")
    expect(html).toContain("linear axis from 0")
    expect(html.match(/<figure class="bars"/g)?.length).toBe(2)
    expect(html).toContain(report.machine.cpu)
    expect(html).toContain("busy")
    expect(html).toContain(verdict(report).replace(/&/g, "&#38;"))
  })
})

test("a measurement that completed nothing (a starved spin floor) leaves no NaN in the page", () => {
  const m: MethodInfo = { id: "floor:spin", name: "floor", mode: "spin", label: "C floor spin", peers: "C↔C" }
  const none: Figures = {
    count: 0,
    elapsed_s: 0.04,
    p50_us: NaN,
    p90_us: NaN,
    p99_us: NaN,
    p999_us: NaN,
    max_us: NaN,
    msgs_per_s: 0,
    hub_cpu_s: 0,
    worker_cpu_s: 0,
  }
  const rows: Row[] = [1, 32].map((inflight) => ({
    name: "floor",
    mode: "spin",
    size: 64,
    inflight,
    ...none,
    rounds: [none],
    cdf: CDF_PERCENTILES.map((p) => [p, NaN]),
  }))
  const report: BenchReport = {
    machine: describeMachine(),
    warnings: [],
    methods: [m],
    rows,
    idle: null,
    notes: [],
    wallS: 1,
    settings: { sizes: [64], rounds: 1, warmupMs: 1, latencyMs: 1, throughputMs: 1, quick: true, load: 0 },
  }
  expect(renderHtml(report)).not.toContain("NaN")
  expect(renderTable(report)).not.toContain("NaN")
})

describe("exact percentiles", () => {
  test("nearest rank over every sample, whatever order they came in", () => {
    const s = new Samples()
    for (const v of [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]) s.record(v)
    expect(s.percentile(50)).toBe(5)
    expect(s.percentile(90)).toBe(9)
    expect(s.percentile(99)).toBe(10)
    expect(s.percentile(0)).toBe(1)
    expect(s.max).toBe(10)
    s.record(0.5)
    expect(s.percentile(0)).toBe(0.5)
    expect(new Samples().percentile(50)).toBeNaN()
  })

  test("it grows past its first buffer", () => {
    const s = new Samples()
    for (let i = 100_000; i > 0; i--) s.record(i)
    expect(s.count).toBe(100_000)
    expect(s.percentile(50)).toBe(50_000)
    expect(s.percentile(99.9)).toBe(99_900)
  })

  test("median and range skip what was not measured", () => {
    expect(median([3, 1, NaN, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(range([3, NaN, 1, 7])).toEqual([1, 7])
    expect(median([])).toBeNaN()
  })
})

describe("a --quick run", () => {
  let dir = ""
  let run: RunResult
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slotbus-bench-test-"))
    // with a Node >= 26.1 here the run has its six Node methods too (test/bench/node.test.ts checks them)
    // ~100 s on a quiet 2-CPU VM, most of it warming pairs up (slower while the suite loads the machine)
    run = await cli(["bench", "--quick", "--json", join(dir, "out.jsonl"), "--html", join(dir, "report.html")], 400_000)
  }, 410_000)
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test("completes and prints the table with the machine and the notes", () => {
    if (run.code !== 0) console.error(run.stderr)
    expect(run.code).toBe(0)
    expect(run.stdout.split("\n")[0]).toMatch(/^verdict at 64 B .*slotbus adaptive is .* process\.send .* unix socket/)
    expect(run.stdout).toContain("slotbus bench ·")
    expect(run.stdout).toContain(`Bun ${Bun.version}`)
    expect(run.stdout).toContain("slotbus adaptive")
    expect(run.stdout).toContain("process.send")
  })

  test("writes JSON lines that parse, with every method at 1 and 32 in flight", () => {
    const lines = readFileSync(join(dir, "out.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
    expect(lines[0].type).toBe("header")
    const measured = lines.filter((l) => l.type === "measurement")
    for (const l of measured) {
      for (const k of REQUIRED) expect(l).toHaveProperty(k)
      // a spin floor descheduled for a whole 40 ms round on a loaded 2-CPU machine can complete nothing
      expect(l.msgs_per_s).toBeGreaterThanOrEqual(0)
      if (l.name === "slotbus") expect(l.msgs_per_s).toBeGreaterThan(0)
    }
    const names = new Set(measured.map((l) => l.name))
    for (const n of ["slotbus", "process.send", "unix", "tcp", "http", "worker", "floor-bun"])
      expect(names).toContain(n)
    expect(names).not.toContain("backends") // a full run's, or --only backends
    // every pair was warmed at each size until its compilers were done (bench/slots/settle.ts)
    for (const m of lines[0].methods.filter((x: { name: string }) => !x.name.startsWith("floor")))
      expect(
        (m.warm_ms ?? []).every((ms: number | null) => ms === null || ms >= SETTLE_WINDOWS * SETTLE_WINDOW_MS),
      ).toBe(true)
    expect(new Set(measured.map((l) => l.inflight))).toEqual(new Set([1, 32]))
    expect(lines.filter((l) => l.mode === "park-idle" && l.name === "slotbus").length).toBe(1)
  })

  test("writes a self-contained HTML report with one latency plot per size holding every measured method", () => {
    const html = readFileSync(join(dir, "report.html"), "utf8")
    expectSelfContained(html)
    const lines = readFileSync(join(dir, "out.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
    const measured = lines.filter((l) => l.type === "measurement" && l.inflight === 1)
    const sizes = [...new Set(measured.map((l) => l.size))]
    const plots = [...html.matchAll(/<figure class="cdf" data-size="(\d+)">([\s\S]*?)<\/figure>/g)]
    expect(plots.map((m) => Number(m[1]))).toEqual(sizes)
    for (const [, size, body] of plots)
      expect(body!.match(/<polyline/g)?.length).toBe(measured.filter((l) => l.size === Number(size)).length)
  })
})
