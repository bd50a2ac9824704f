// `slotbus bench`'s Node methods (issue 67): slotbus Node↔Node, Node→Bun and Bun→Node, and Node's own ways with
// both ends in Node, measured in the same run as the rest; skipped with the install line where there is no Node.
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { METHODS } from "../../bench/slots/method-list.ts"
import { parseArgs } from "../../bench/slots/options.ts"
import { describeMachine } from "../../bench/lib/machine.ts"
import {
  CDF_PERCENTILES,
  nodeVerdict,
  renderTable,
  type BenchReport,
  type Figures,
  type MethodInfo,
  type Row,
} from "../../bench/slots/report.ts"
import { jsonHeader, renderJson } from "../../bench/slots/report-json.ts"
import { renderHtml } from "../../bench/slots/report-html.ts"
import { findNode, NODE_INSTALL } from "../support/runtime/node.ts"
import { run as runCmd } from "../support/helpers.ts"

const repo = join(import.meta.dir, "..", "..")
const bin = join(repo, "bin", "slotbus.ts")
const NODE_IDS = [
  "node:slotbus",
  "node-bun:slotbus",
  "bun-node:slotbus",
  "node:process.send",
  "node:worker",
  "node:unix",
]
const node = findNode()
if (!node) console.log(`skipping the bench's Node run: no Node >= 26.1 here (${NODE_INSTALL})`)

const bench = (args: string[], env: Record<string, string | undefined>, timeoutMs = 120_000) =>
  runCmd([process.execPath, bin, "bench", ...args], { cwd: repo, env: { ...process.env, ...env }, timeoutMs })
const jsonLines = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))

describe("the Node methods' names", () => {
  test("--only takes node (every method with both ends in Node), node-bun, bun-node and each node:<way>", () => {
    const names = ["node", "node-bun", "bun-node", ...NODE_IDS]
    expect(parseArgs(["--only", names.join(",")]).only).toEqual(names)
    expect(METHODS.filter((m) => m.name === "node").map((m) => m.id)).toEqual([
      "node:slotbus",
      "node:process.send",
      "node:worker",
      "node:unix",
    ])
  })

  test("--help lists them", async () => {
    const r = await bench(["--help"], {})
    for (const id of ["node-bun", "bun-node", "node:process.send", "node:worker", "node:unix"])
      expect(r.stdout).toContain(id)
  })
})

describe("the Node line of the report", () => {
  const m = (id: string, label: string, peers: string): MethodInfo => {
    const [name, mode] = id.split(":") as [string, string]
    return { id, name, mode, label, peers }
  }
  const methods = [
    m("slotbus:adaptive", "slotbus adaptive", "Bun↔Bun"),
    m("node:slotbus", "slotbus Node↔Node", "Node↔Node"),
    m("node-bun:slotbus", "slotbus Node→Bun", "Node front, Bun worker"),
    m("bun-node:slotbus", "slotbus Bun→Node", "Bun front, Node worker"),
    m("node:process.send", "Node process.send", "Node↔Node"),
    m("node:worker", "Node worker thread", "same Node process"),
    m("node:unix", "Node unix socket", "Node↔Node"),
  ]
  // p50 at 1 in flight: Bun↔Bun 10 µs, Node↔Node 15, Node→Bun 12, Bun→Node 11, process.send 60, worker 30, unix 45
  const P50 = [10, 15, 12, 11, 60, 30, 45]
  const figures = (p50: number): Figures => ({
    count: 100,
    elapsed_s: 0.1,
    p50_us: p50,
    p90_us: p50,
    p99_us: p50,
    p999_us: p50,
    max_us: p50,
    msgs_per_s: 1e6 / p50,
    hub_cpu_s: 0.01,
    worker_cpu_s: 0.01,
  })
  const row = (x: MethodInfo, p50: number): Row => ({
    name: x.name,
    mode: x.mode,
    size: 64,
    inflight: 1,
    ...figures(p50),
    rounds: [figures(p50), figures(p50)],
    cdf: CDF_PERCENTILES.map((p) => [p, p50] as [number, number]),
  })
  const report: BenchReport = {
    machine: describeMachine(),
    warnings: [],
    settings: { sizes: [64], rounds: 2, warmupMs: 10, latencyMs: 60, throughputMs: 40, quick: true, load: 0 },
    methods,
    rows: methods.map((x, i) => row(x, P50[i]!)),
    idle: { hub_cpu_s: 0.004, worker_cpu_s: 0.001, elapsed_s: 1 },
    nodeIdle: { hub_cpu_s: 0.002, worker_cpu_s: 0.003, elapsed_s: 1 },
    notes: [],
    wallS: 3,
  }

  test("compares slotbus Node↔Node with Bun↔Bun and Node's own ways, and gives the mixed pairs' p50s", () => {
    expect(nodeVerdict(report)).toBe(
      "node verdict at 64 B (medians of the rounds' ratios, with ranges): slotbus Node↔Node's p50 is 15.0 µs; " +
        "1.5× (1.5–1.5×) Bun↔Bun's (slotbus adaptive); 4.0× (4.0–4.0×) faster than Node's process.send; " +
        "2.0× (2.0–2.0×) faster than a worker_threads port; 3.0× (3.0–3.0×) faster than Node's unix socket; " +
        "p50 Node front, Bun worker 12.0 µs, Bun front, Node worker 11.0 µs",
    )
    expect(nodeVerdict({ ...report, rows: report.rows.filter((r) => r.name !== "node") })).toBeNull()
  })

  test("the table gives it second, the JSON header holds it, and the Node idle pair has a line of each", () => {
    const table = renderTable(report, true).split("\n")
    expect(table[1]).toStartWith("node verdict at 64 B")
    expect(table).toContain(
      "slotbus park, Node↔Node, idle: hub 0.20% + worker 0.30% of one core over 1.0 s with nothing sent",
    )
    expect(JSON.parse(jsonHeader(report)).node_verdict).toBe(nodeVerdict(report))
    const idle = jsonLines(renderJson(report)).filter((l) => l.type === "idle")
    expect(idle.map((l) => [l.name, l.mode, l.core_pct])).toEqual([
      ["slotbus", "park-idle", 0.5],
      ["node", "park-idle", 0.5],
    ])
  })

  test("the HTML page gives it as a second verdict, draws a method with a Node end dotted, and has the Node idle pair", () => {
    const html = renderHtml(report)
    const verdicts = [...html.matchAll(/<p class="verdict">([^<]*)<\/p>/g)].map((x) => x[1]!)
    expect(verdicts).toHaveLength(2)
    expect(verdicts[1]).toStartWith("node verdict at 64 B")
    const dotted = [...html.matchAll(/<polyline [^>]*stroke-dasharray="2 2"><title>([^(]*) \(/g)].map((x) => x[1])
    expect(dotted).toEqual(methods.slice(1).map((x) => x.label))
    expect(html).toContain("slotbus park, Node↔Node, idle: hub 0.20%")
  })
})

describe("a --quick run", () => {
  test("without a Node >= 26.1 the Node methods are skipped in one note with the install line, and the run goes on", async () => {
    const r = await bench(
      ["--quick", "--rounds", "1", "--sizes", "64", "--only", "node,bun-node,node-bun,worker", "--json"],
      {
        SLOTBUS_NODE: join(repo, "no-such-node"),
      },
    )
    expect(r.code).toBe(0)
    const [head, ...rows] = jsonLines(r.stdout)
    expect(rows.map((x) => `${x.name}:${x.mode}`)).toEqual(["worker:postMessage", "worker:postMessage"])
    const notes = (head.notes as string[]).filter((n) => n.includes("skipped"))
    expect(notes).toHaveLength(1)
    expect(notes[0]).toContain(`SLOTBUS_NODE=${join(repo, "no-such-node")} is not a node >= 26.1: ${NODE_INSTALL}`)
    for (const label of ["slotbus Node↔Node", "slotbus Bun→Node", "Node unix socket"]) expect(notes[0]).toContain(label)
  })

  test.skipIf(!node)(
    "with Node it measures every Node method at 1 and 32 in flight, and the idle Node pair",
    async () => {
      const r = await bench(
        [
          "--quick",
          "--rounds",
          "1",
          "--sizes",
          "64,64k",
          "--only",
          "node,node-bun,bun-node,idle",
          "--idle",
          "300",
          "--json",
        ],
        {
          SLOTBUS_NODE: node!,
        },
      )
      if (r.code !== 0) console.error(r.stderr)
      expect(r.code).toBe(0)
      const [head, ...lines] = jsonLines(r.stdout)
      // a pair whose V8 threads stayed busy (collecting 64 KiB answers) is measured after 2 s and noted: not a failure
      expect(head.notes.filter((n: string) => !n.includes("compiler threads"))).toEqual([])
      const measured = lines.filter((l) => l.type === "measurement")
      expect(measured.map((l) => `${l.name}:${l.mode} ${l.size} ${l.inflight}`).sort()).toEqual(
        NODE_IDS.flatMap((id) => [64, 65536].flatMap((s) => [1, 32].map((n) => `${id} ${s} ${n}`))).sort(),
      )
      for (const l of measured) {
        expect(l.msgs_per_s).toBeGreaterThan(0)
        expect(l.worker_cpu_s).toBeGreaterThan(0)
      }
      expect(head.node_verdict).toStartWith("node verdict at 64 B")
      expect(lines.filter((l) => l.type === "idle").map((l) => l.name)).toEqual(["slotbus", "node"])
    },
    150_000,
  )
})
