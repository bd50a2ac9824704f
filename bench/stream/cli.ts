// `slotbus bench stream`: streamed answers (docs/PROTOCOL.md §9) against the same answers collected whole, with the
// worker in a process of its own (worker.ts), in one run:
//   first chunk  a body of 5 small chunks 20 ms apart: when the caller has the headers, the first chunk and the end,
//                streamed (request { stream: true }, bus.fetch, fetch from a Bun.serve server) and collected
//                (a plain request: its first byte comes with the whole body)
//   64 MiB       a 64 MiB body read to its end: streamed with 64 KiB and 1 MiB chunks under stream windows of
//                256 KiB, 1 MiB (the default) and 4 MiB; collected by a plain request and by the stream's bytes();
//                answered whole (a Uint8Array, the path before streams, and a stream under streamWindowBytes 0);
//                through bus.fetch; and from a Bun.serve server over localhost with fetch(), what an app does today
//                without slotbus.
import { loadavg } from "node:os"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { parseRunArgs } from "../lib/args.ts"
import { reapedChildrenCpuSeconds, spawn, type Child } from "../lib/child.ts"
import { processCpuSeconds, selfCpuSeconds } from "../lib/cpu.ts"
import { busyWarnings, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import { Samples } from "../lib/samples.ts"
import { BODY_BYTES, pattern } from "./worker.ts"

const USAGE = `usage: slotbus bench stream [--time ms] [--rounds n] [--quick] [--only list] [--json]

  --time <ms>    per line and round: how long a 64 MiB line keeps reading bodies (at least 2), and a first-chunk
                 line makes ms/100 calls (at least 3) (default 1000; --quick 300); each line first makes one
                 call that is not counted, its answer checked
  --rounds <n>   rounds, the order of the workers rotating, each round with fresh ones (default 3; --quick 1)
  --only <list>  some of first,body: the first-chunk lines, the 64 MiB lines (default both)
  --json         one JSON object per line instead of the tables`

const KiB = 1024
const MiB = 1024 * KiB
/** Every bus of the bench takes bodies this large, so a 64 MiB answer fits whole. */
const MAX_BODY = 65 * MiB
const TICKS = { n: 5, gapMs: 20, bytes: 16 }
const TICKS_PATH = `/ticks?n=${TICKS.n}&gap=${TICKS.gapMs}`

/** A worker process set up for its turn: a slotbus worker on a bus with this stream window, or the Bun.serve one. */
type TargetName = "window 256 KiB" | "window 1 MiB" | "window 4 MiB" | "window 0" | "Bun.serve"
const TARGETS: readonly TargetName[] = ["window 256 KiB", "window 1 MiB", "window 4 MiB", "window 0", "Bun.serve"]
const WINDOWS: Record<Exclude<TargetName, "Bun.serve">, number | undefined> = {
  "window 256 KiB": 256 * KiB,
  "window 1 MiB": undefined, // the default, as a user gets it
  "window 4 MiB": 4 * MiB,
  "window 0": 0,
}

/**
 * How the caller asks: request { stream: true } read chunk by chunk, or its `bytes()` (one body, as a caller that
 * needs it whole), a plain request (collected), bus.fetch, or fetch() over HTTP.
 */
type Via = "stream" | "stream-bytes" | "collect" | "fetch" | "http"
const METHOD: Record<Via, string> = {
  stream: "request {stream}",
  "stream-bytes": "request {stream} bytes()",
  collect: "request",
  fetch: "bus.fetch",
  http: "HTTP fetch",
}

export type Section = "first" | "body"

interface Line {
  section: Section
  target: TargetName
  via: Via
  path: string
  /** What the worker answers: "ticks", "stream" (a Response over chunks) or "whole" (one Uint8Array). */
  answer: "ticks" | "stream" | "whole"
  /** Chunk bytes of a streamed answer, 0 for a whole one. */
  chunk: number
}

const line = (section: Section, target: TargetName, via: Via, answer: Line["answer"], chunk = 0): Line => ({
  section,
  target,
  via,
  answer,
  chunk,
  path: answer === "ticks" ? TICKS_PATH : answer === "whole" ? "/whole" : `/stream?chunk=${chunk}`,
})

export const LINES: readonly Line[] = [
  line("first", "window 1 MiB", "stream", "ticks"),
  line("first", "window 1 MiB", "collect", "ticks"),
  line("first", "window 1 MiB", "fetch", "ticks"),
  line("first", "Bun.serve", "http", "ticks"),
  ...[64 * KiB, MiB].flatMap((chunk) => [
    line("body", "window 256 KiB", "stream", "stream", chunk),
    line("body", "window 1 MiB", "stream", "stream", chunk),
    line("body", "window 4 MiB", "stream", "stream", chunk),
  ]),
  line("body", "window 1 MiB", "stream-bytes", "stream", 64 * KiB),
  line("body", "window 1 MiB", "collect", "stream", 64 * KiB),
  line("body", "window 1 MiB", "collect", "stream", MiB),
  line("body", "window 1 MiB", "collect", "whole"),
  line("body", "window 0", "collect", "stream", 64 * KiB),
  line("body", "window 1 MiB", "fetch", "stream", 64 * KiB),
  line("body", "window 1 MiB", "fetch", "stream", MiB),
  line("body", "Bun.serve", "http", "stream", 64 * KiB),
  line("body", "Bun.serve", "http", "stream", MiB),
  line("body", "Bun.serve", "http", "whole"),
]

export interface FirstRow {
  section: "first"
  method: string
  window: string
  /** Calls measured (all rounds). */
  runs: number
  /** p50 of the time from the call to the status and headers, to the first body chunk, and to the body's end. */
  headersMs: number
  firstChunkMs: number
  endMs: number
}

export interface BodyRow {
  section: "body"
  method: string
  /** "stream" (the worker's Response over chunks), "whole" (a Uint8Array) */
  answer: string
  /** Chunk bytes of a streamed answer, 0 for a whole one. */
  chunk: number
  window: string
  /** 64 MiB bodies read (all rounds). */
  bodies: number
  /** p50 of the time from the call to the body's last byte. */
  msP50: number
  /** BODY_BYTES / msP50, in 10^6 bytes per second. */
  mbPerS: number
  /** CPU of this process (its threads included) and the worker process per body. */
  cpuMsPerBody: number
}

export type Row = FirstRow | BodyRow

interface Target {
  name: TargetName
  bus: SlotBus | null
  url: string
  child: Child
  close(): Promise<void>
}

const WORKER = join(import.meta.dir, "worker.ts")
let buses = 0

async function setUp(name: TargetName): Promise<Target> {
  if (name === "Bun.serve") {
    const child = spawn([process.execPath, WORKER, "--http"])
    try {
      const m = await child.whileAlive(child.waitLine(/^ready (\d+)$/), "Bun.serve worker")
      return {
        name,
        bus: null,
        url: `http://127.0.0.1:${m[1]}`,
        child,
        close: async () => void (await child.kill()),
      }
    } catch (e) {
      await child.kill()
      throw e
    }
  }
  const window = WINDOWS[name]
  const bus = await SlotBus.listen(`bench-stream-${process.pid}-${++buses}`, {
    maxBodyBytes: MAX_BODY,
    ...(window === undefined ? {} : { streamWindowBytes: window }),
  })
  const child = spawn([process.execPath, WORKER, bus.name])
  try {
    await child.whileAlive(child.waitLine(/^ready$/), "slotbus worker")
    await child.whileAlive(bus.waitForWorkers(1), "slotbus worker")
    return {
      name,
      bus,
      url: "",
      child,
      close: async () => {
        await child.kill()
        await bus.close({ drain: false })
      },
    }
  } catch (e) {
    await child.kill()
    await bus.close({ drain: false })
    throw e
  }
}

interface Times {
  headersNs: number
  firstNs: number
  endNs: number
  bytes: number
}

/** One call of `line`, read to its end; `keep` gets every chunk (for the check). Times from the call. */
async function once(t: Target, l: Line, keep?: Uint8Array[]): Promise<Times> {
  const t0 = Bun.nanoseconds()
  let firstNs = 0
  let bytes = 0
  const take = (b: Uint8Array) => {
    if (b.length === 0) return
    if (bytes === 0) firstNs = Bun.nanoseconds() - t0
    bytes += b.length
    keep?.push(b)
  }
  let status: number
  let body: ReadableStream<Uint8Array> | null = null
  if (l.via === "collect") {
    const r = await t.bus!.request({ path: l.path })
    status = r.status
    take(r.body)
  } else if (l.via === "stream-bytes") {
    const r = await t.bus!.request({ path: l.path }, { stream: true })
    status = r.status
    take(await r.bytes())
  } else if (l.via === "stream") {
    const r = await t.bus!.request({ path: l.path }, { stream: true })
    status = r.status
    body = r.body
  } else {
    const r = l.via === "fetch" ? await t.bus!.fetch(new Request(`http://bench${l.path}`)) : await fetch(t.url + l.path)
    status = r.status
    body = r.body
  }
  const headersNs = Bun.nanoseconds() - t0
  if (status !== 200) throw new Error(`${METHOD[l.via]} ${l.path} answered ${status}`)
  if (body) {
    const reader = body.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      take(value)
    }
  }
  return { headersNs, firstNs, endNs: Bun.nanoseconds() - t0, bytes }
}

const BODY = pattern(BODY_BYTES)

/** The line's answer, whole and right: a bench of wrong answers measures nothing. */
async function check(t: Target, l: Line) {
  const parts: Uint8Array[] = []
  await once(t, l, parts)
  const got = Buffer.concat(parts)
  const want = l.answer === "ticks" ? Buffer.concat(Array.from({ length: TICKS.n }, () => BODY.subarray(0, 16))) : BODY
  if (!got.equals(want))
    throw new Error(
      `${METHOD[l.via]} ${l.path} (${t.name}) answered ${got.length} bytes${got.length === want.length ? " that differ" : ""}, not the ${want.length} sent`,
    )
}

interface Tally {
  headers: Samples
  first: Samples
  end: Samples
  cpuS: number
}

async function measure(t: Target, l: Line, ms: number, tally: Tally) {
  const cpu = () => selfCpuSeconds() + processCpuSeconds(t.child.pid)
  const c0 = cpu()
  const runs = Math.max(3, Math.round(ms / 100))
  const until = Bun.nanoseconds() + ms * 1e6
  for (let i = 0; l.section === "first" ? i < runs : i < 2 || Bun.nanoseconds() < until; i++) {
    const r = await once(t, l)
    tally.headers.record(r.headersNs)
    tally.first.record(r.firstNs)
    tally.end.record(r.endNs)
  }
  tally.cpuS += cpu() - c0
}

/** Every line measured each round, its worker set up fresh for it, the order of the workers rotating. */
async function measureAll(lines: readonly Line[], ms: number, rounds: number): Promise<Map<Line, Tally>> {
  const tallies = new Map<Line, Tally>(
    lines.map((l) => [l, { headers: new Samples(), first: new Samples(), end: new Samples(), cpuS: 0 }]),
  )
  const targets = TARGETS.filter((n) => lines.some((l) => l.target === n))
  for (let r = 0; r < rounds; r++)
    for (let k = 0; k < targets.length; k++) {
      const t = await setUp(targets[(k + r) % targets.length]!)
      try {
        for (const l of lines)
          if (l.target === t.name) {
            await check(t, l)
            await measure(t, l, ms, tallies.get(l)!)
          }
      } finally {
        await t.close()
      }
    }
  return tallies
}

const windowLabel = (l: Line) =>
  l.target === "Bun.serve"
    ? "–"
    : l.via === "collect" && l.answer === "whole"
      ? "–"
      : l.target === "window 1 MiB"
        ? "1 MiB (default)"
        : l.target.slice("window ".length)

function rows(tallies: Map<Line, Tally>): Row[] {
  return [...tallies].map(([l, t]): Row => {
    const method = l.via === "http" ? "HTTP fetch ← Bun.serve" : METHOD[l.via]
    if (l.section === "first")
      return {
        section: "first",
        method,
        window: windowLabel(l),
        runs: t.end.count,
        headersMs: t.headers.percentile(50) / 1e6,
        firstChunkMs: t.first.percentile(50) / 1e6,
        endMs: t.end.percentile(50) / 1e6,
      }
    const msP50 = t.end.percentile(50) / 1e6
    return {
      section: "body",
      method,
      answer: l.answer === "whole" ? "whole" : "stream",
      chunk: l.chunk,
      window: windowLabel(l),
      bodies: t.end.count,
      msP50,
      mbPerS: BODY_BYTES / 1e6 / (msP50 / 1e3),
      cpuMsPerBody: (t.cpuS / t.end.count) * 1e3,
    }
  })
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
const size = (n: number) => (n === 0 ? "–" : n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`)

export function table(all: Row[]): string {
  const out: string[] = []
  const first = all.filter((r): r is FirstRow => r.section === "first")
  const body = all.filter((r): r is BodyRow => r.section === "body")
  if (first.length > 0) {
    out.push(
      `time to the first chunk: ${TICKS.n} chunks of ${TICKS.bytes} B, the first at once, then one every ${TICKS.gapMs} ms (p50 from the call)`,
      `${"method".padEnd(26)}${"window".padEnd(17)}${"headers ms".padStart(11)}${"1st chunk ms".padStart(14)}${"end ms".padStart(9)}${"runs".padStart(6)}`,
      ...first.map(
        (r) =>
          `${r.method.padEnd(26)}${r.window.padEnd(17)}${fmt(r.headersMs).padStart(11)}${fmt(r.firstChunkMs).padStart(14)}${fmt(r.endMs).padStart(9)}${String(r.runs).padStart(6)}`,
      ),
    )
  }
  if (body.length > 0) {
    if (out.length > 0) out.push("")
    out.push(
      `a ${BODY_BYTES / MiB} MiB body, read to its end (p50 from the call; MB = 10^6 bytes)`,
      `${"method".padEnd(26)}${"answer".padEnd(8)}${"chunk".padStart(8)}  ${"window".padEnd(17)}${"ms".padStart(7)}${"MB/s".padStart(8)}${"cpu ms".padStart(8)}${"bodies".padStart(8)}`,
      ...body.map(
        (r) =>
          `${r.method.padEnd(26)}${r.answer.padEnd(8)}${size(r.chunk).padStart(8)}  ${r.window.padEnd(17)}${fmt(r.msP50).padStart(7)}${r.mbPerS.toFixed(0).padStart(8)}${fmt(r.cpuMsPerBody).padStart(8)}${String(r.bodies).padStart(8)}`,
      ),
    )
  }
  return out.join("\n")
}

/** The lines a reader looks for: first chunk streamed against collected, the best window, streamed against whole. */
export function verdicts(all: Row[]): string[] {
  const out: string[] = []
  const first = (m: string) => all.find((r): r is FirstRow => r.section === "first" && r.method === m)
  const s = first(METHOD.stream)
  const c = first(METHOD.collect)
  if (s && c)
    out.push(
      `first chunk: ${fmt(s.firstChunkMs)} ms streamed against ${fmt(c.firstChunkMs)} ms collected (headers after ${fmt(s.headersMs)} ms)`,
    )
  const body = all.filter((r): r is BodyRow => r.section === "body")
  const streamed = body.filter((r) => r.method === METHOD.stream)
  for (const chunk of new Set(streamed.map((r) => r.chunk))) {
    const ws = streamed.filter((r) => r.chunk === chunk).sort((a, b) => b.mbPerS - a.mbPerS)
    if (ws.length > 1)
      out.push(
        `64 MiB streamed in ${size(chunk)} chunks, by window: ${ws.map((r) => `${r.window.replace(" (default)", "")} ${r.mbPerS.toFixed(0)} MB/s`).join(", ")}`,
      )
  }
  const best = [...streamed].sort((a, b) => b.mbPerS - a.mbPerS)[0]
  const whole = body.find((r) => r.method === METHOD.collect && r.answer === "whole")
  const http = body
    .filter((r) => r.method.startsWith("HTTP") && r.answer === "stream")
    .sort((a, b) => b.mbPerS - a.mbPerS)[0]
  const pick = (m: string, answer: string) => body.find((r) => r.method === m && r.answer === answer)
  const asBytes = pick(METHOD["stream-bytes"], "stream")
  const collected = pick(METHOD.collect, "stream")
  if (asBytes && collected)
    out.push(
      `the body whole in one buffer: request {stream} bytes() ${asBytes.mbPerS.toFixed(0)} MB/s, a plain request of the same stream ${collected.mbPerS.toFixed(0)} MB/s${whole ? `, a whole Uint8Array ${whole.mbPerS.toFixed(0)} MB/s` : ""}`,
    )
  if (best && (whole || http))
    out.push(
      `best streamed: ${best.mbPerS.toFixed(0)} MB/s (${size(best.chunk)} chunks, window ${best.window.replace(" (default)", "")})${whole ? `; whole Uint8Array ${whole.mbPerS.toFixed(0)} MB/s` : ""}${http ? `; Bun.serve streamed over HTTP ${http.mbPerS.toFixed(0)} MB/s` : ""}`,
    )
  return out
}

export async function main(argv: string[]): Promise<number> {
  const args = parseRunArgs(argv, USAGE)
  if (typeof args === "number") return args
  const { ms, rounds, json } = args
  let sections: Section[] = ["first", "body"]
  if (args.only !== null) {
    const names = args.only.split(",")
    if (names.some((n) => n !== "first" && n !== "body"))
      return (void console.error(`--only takes some of first,body\n${USAGE}`), 2)
    sections = names as Section[]
  }
  const machine = describeMachine()
  const load = loadavg()
  const busy0 = machineBusySeconds()
  const mine0 = selfCpuSeconds() + reapedChildrenCpuSeconds()
  const t0 = performance.now()
  const all = rows(
    await measureAll(
      LINES.filter((l) => sections.includes(l.section)),
      ms,
      rounds,
    ),
  )
  const wall = (performance.now() - t0) / 1000
  const busy1 = machineBusySeconds()
  const others =
    busy0 !== null && busy1 !== null ? busy1 - busy0 - (selfCpuSeconds() + reapedChildrenCpuSeconds() - mine0) : null
  if (json) {
    for (const r of all) console.log(JSON.stringify(r))
    return 0
  }
  console.log(
    `slotbus bench stream · ${machine.cpu} · ${machine.cores} cores · ${machine.kernel} · Bun ${machine.bun} · ${machine.date} · load average ${load.map((l) => l.toFixed(2)).join(", ")}`,
  )
  for (const w of busyWarnings(machine, others, wall)) console.log(`warning: ${w}`)
  console.log(`\n${table(all)}\n`)
  for (const v of verdicts(all)) console.log(v)
  console.log(
    `(${rounds} round${rounds > 1 ? "s" : ""}, ${ms} ms per 64 MiB line and round, ${Math.max(3, Math.round(ms / 100))} calls per first-chunk line and round; one worker process per window and round, maxBodyBytes ${MAX_BODY / MiB} MiB; cpu ms counts this process, its threads and the worker per body. Compare lines within one run.)`,
  )
  return 0
}
