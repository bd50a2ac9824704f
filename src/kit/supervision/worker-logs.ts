// A supervised pool's worker output, told apart per worker (the Supervisor's `logs` option). Each stream a worker
// would have inherited from the front is a pipe the front reads instead, line by line: each line is written to the
// front's same stream prefixed `[pool#instance pid N]` (or as one JSON object, or to rotated files, log-files.ts), with
// the worker's control bytes escaped (they must not drive the front's terminal) and lines past maxLineBytes cut.
// A front whose stdout is slow costs lines, never memory nor the workers' progress: past maxBufferedBytes waiting,
// lines are dropped, counted, and the count is written once the stream drains. The cost is the front's, per line:
// so each worker has a budget of lines a second (both streams); past it, its lines are counted and dropped unread
// (not decoded nor escaped) until the next second, which starts with one line saying how many. Reading a pipe costs
// too (a worker logging in a loop writes ~300 MB/s: a third of a core to read and discard), so past maxReadBytes
// in a second the front stops reading that worker's pipes until the second is over: its writes wait meanwhile.
import { resolve } from "node:path"
import { printable, printableJson } from "../checks/escape.ts"
import { LAST_WORDS_FD, WORKER_LOG_ENV, type WorkerLogTarget } from "./last-words.ts"
import { LogFile } from "./log-files.ts"
import { DECODER, LineBudget, LineCutter, Outlet, type Stream } from "./log-lines.ts"
import { checkOptions, optionNames } from "../checks/option-check.ts"
import { checkName, checkNumber, NAME_CHARS } from "../checks/value-check.ts"
import { sleep, type Process } from "../../runtime/index.ts"

export { WorkerLogsError } from "./log-files.ts"

/**
 * "prefix" (the default): each line `[pool#instance pid N] …` on the front's same stream; "json": one object a line;
 * "inherit": the workers write to the front's stdout and stderr themselves, as they are; or the settings.
 */
export type WorkerLogsOption = "prefix" | "json" | "inherit" | WorkerLogsConfig

export interface WorkerLogsConfig {
  /** Default "prefix". */
  format?: "prefix" | "json"
  /** The pool's name in each line (default: the bus's name for superviseWorkers, else the command's script). */
  pool?: string
  /** Write to `<dir>/<pool>.log` (0600, the directory this user's and 0700 when made) instead of stdout/stderr. */
  dir?: string
  /** With dir: rotate the file before it passes this size (default 10 MiB, at least 4096). */
  maxBytes?: number
  /** With dir: rotated files kept, `<pool>.log.1` the newest (default 5, 0..100). */
  keep?: number
  /** A longer line is cut here and marked `[truncated]` (default 16 KiB, 256..1 MiB). */
  maxLineBytes?: number
  /** Output waiting for a slow stdout or stderr, per stream; past it lines are dropped and counted (default 1 MiB). */
  maxBufferedBytes?: number
  /** Lines each worker may have relayed a second (stdout and stderr together); past it they are dropped and counted (default 1000; Infinity: no budget). */
  maxLinesPerSecond?: number
  /** Bytes read from each worker's pipes a second; past it they are not read until the second is over, and the worker's writes wait (default 8 MiB). */
  maxReadBytesPerSecond?: number
}

type Stdio = "pipe" | "ignore" | "inherit"
const STREAMS = ["stdout", "stderr"] as const
type Settings = Required<Omit<WorkerLogsConfig, "dir" | "format">> & { format: "prefix" | "json" | "inherit" }

const CONFIG_OPTIONS = optionNames<WorkerLogsConfig>({
  format: true,
  pool: true,
  dir: true,
  maxBytes: true,
  keep: true,
  maxLineBytes: true,
  maxBufferedBytes: true,
  maxLinesPerSecond: true,
  maxReadBytesPerSecond: true,
})
const WHERE = "Supervisor"

/** `option` with `pool` as its pool name unless it names one (superviseWorkers: the bus's name). */
export function withPoolName(
  option: WorkerLogsOption | undefined,
  pool: string | undefined,
): WorkerLogsOption | undefined {
  if (pool === undefined || option === "inherit") return option
  if (option === undefined || option === "prefix" || option === "json") return { format: option ?? "prefix", pool }
  if (typeof option === "object" && option !== null && !Array.isArray(option) && option.pool === undefined)
    return { ...option, pool }
  return option
}

/** A pool's worker logs: what its children's stdout and stderr are spawned with, and the reading of those it pipes. */
export class WorkerLogs {
  /** What the children's stdout and stderr are spawned with: a pipe for each stream read here. */
  readonly stdio: { stdout: Stdio; stderr: Stdio }
  private readonly s: Settings
  /** The streams read here: those the children would have inherited. */
  private readonly taken: Record<Stream, boolean>
  private readonly file: LogFile | null = null
  private readonly outlets: Record<Stream, Outlet> | null = null
  private readers = 0
  private readonly counts = { lines: 0, dropped: 0, truncated: 0, overBudget: 0 }
  private fileFailed = false

  constructor(option: WorkerLogsOption | undefined, command: readonly string[], stdout: Stdio, stderr: Stdio) {
    const { s, dir } = settings(option, command)
    this.s = s
    this.taken = {
      stdout: s.format !== "inherit" && stdout === "inherit",
      stderr: s.format !== "inherit" && stderr === "inherit",
    }
    this.stdio = { stdout: this.taken.stdout ? "pipe" : stdout, stderr: this.taken.stderr ? "pipe" : stderr }
    if (option !== undefined && s.format !== "inherit" && stdout !== "inherit" && stderr !== "inherit")
      throw new TypeError(
        `${WHERE}: logs needs stdout or stderr "inherit" (the default); a piped stream is the app's to read`,
      )
    if (s.format === "inherit") return
    if (dir !== undefined) this.file = new LogFile(dir, s.pool, s.maxBytes, s.keep)
    else
      this.outlets = {
        stdout: new Outlet(process.stdout, s.maxBufferedBytes, this.counts, (n) => this.dropNotice(n, "stdout")),
        stderr: new Outlet(process.stderr, s.maxBufferedBytes, this.counts, (n) => this.dropNotice(n, "stderr")),
      }
  }

  /**
   * What the children's environment gets: where their stderr lines go, a log file or fd 3 (last-words.ts), so that a
   * worker whose front is gone writes its last line there itself.
   */
  get childEnv(): Record<string, string> {
    if (!this.taken.stderr || this.s.format === "inherit") return {}
    const { pool, format } = this.s
    const target: WorkerLogTarget =
      this.file !== null ? { file: resolve(this.file.path), pool, format } : { fd: LAST_WORDS_FD, pool, format }
    return { [WORKER_LOG_ENV]: JSON.stringify(target) }
  }

  /**
   * The front's own fd its children get as fd 3 (LAST_WORDS_FD), or null: where the front writes their stderr lines
   * (its stderr) when no file takes them, so that a worker whose front is gone still reaches it (the journal).
   */
  get lastWordsFd(): number | null {
    return this.taken.stderr && this.outlets !== null ? 2 : null
  }

  /** Lines read from the workers. */
  get lines(): number {
    return this.counts.lines
  }
  /** Lines not written: the front's stream was slow past maxBufferedBytes, or the file could not be written. */
  get dropped(): number {
    return this.counts.dropped
  }
  /** Lines cut at maxLineBytes. */
  get truncated(): number {
    return this.counts.truncated
  }
  /** Of `dropped`, the lines a worker wrote past maxLinesPerSecond. */
  get overBudget(): number {
    return this.counts.overBudget
  }

  /** Reads the streams of `proc` (instance `instance`) spawned with `stdio` until they end (after its exit, what it wrote last). */
  attach(proc: Process<Stdio, Stdio, Stdio>, instance: number): void {
    if (!this.taken.stdout && !this.taken.stderr) return
    const budget = new LineBudget(this.s.maxLinesPerSecond, this.s.maxReadBytesPerSecond, this.counts, (n, stream) =>
      this.write([this.budgetNotice(n, stream, instance, proc.pid)], stream),
    )
    for (const stream of STREAMS)
      if (this.taken[stream])
        void this.read(proc[stream] as ReadableStream<Uint8Array>, stream, instance, proc.pid, budget)
  }

  private async read(
    from: ReadableStream<Uint8Array>,
    stream: Stream,
    instance: number,
    pid: number,
    budget: LineBudget,
  ): Promise<void> {
    this.readers++
    const head = `[${this.s.pool}#${instance} pid ${pid}${this.file && stream === "stderr" ? " stderr" : ""}] `
    let out: string[] = []
    let time = ""
    const line = (bytes: Uint8Array, cut: boolean) => {
      if (!budget.take(stream)) return
      const msg = DECODER.decode(bytes)
      if (cut) this.counts.truncated++
      if (this.s.format === "json")
        out.push(
          `${printableJson({ time, pool: this.s.pool, instance, pid, stream, msg, ...(cut && { truncated: true }) })}\n`,
        )
      else out.push(`${this.file ? `${time} ` : ""}${head}${printable(msg)}${cut ? " [truncated]" : ""}\n`)
    }
    const cutter = new LineCutter(this.s.maxLineBytes, line)
    const flush = () => {
      this.counts.lines += out.length
      if (out.length > 0) this.write(out, stream)
      out = []
    }
    try {
      for await (const chunk of from) {
        budget.tick()
        if ((this.s.format === "json" || this.file) && budget.open) time = new Date().toISOString()
        cutter.push(chunk)
        flush()
        const pause = budget.read(chunk.length)
        if (pause > 0) await sleep(pause) // the pipe fills meanwhile: the worker's writes wait
      }
    } catch {} // the pipe broke with the process: what was read is written
    cutter.end()
    flush()
    budget.end()
    if (--this.readers === 0) this.file?.close() // opened again by the next worker's first line
  }

  private write(lines: string[], stream: Stream): void {
    if (!this.file) return this.outlets![stream].write(lines.join(""), lines.length)
    try {
      this.file.write(lines)
      this.fileFailed = false
    } catch (e) {
      this.counts.dropped += lines.length
      if (!this.fileFailed)
        console.warn(`slotbus: ${(e as Error).message}; worker log lines are dropped until it can be written`)
      this.fileFailed = true
    }
  }

  private budgetNotice(n: number, stream: Stream, instance: number, pid: number): string {
    const msg = `${n} lines dropped: over the budget of ${this.s.maxLinesPerSecond} lines a second`
    if (this.s.format === "json")
      return `${printableJson({ time: new Date().toISOString(), pool: this.s.pool, instance, pid, stream, dropped: n, msg })}\n`
    return `${this.file ? `${new Date().toISOString()} ` : ""}[${this.s.pool}#${instance} pid ${pid}] ${msg}\n`
  }

  private dropNotice(n: number, stream: Stream): string {
    const msg = `${n} lines dropped: the front's ${stream} was slow (over ${this.s.maxBufferedBytes} bytes waiting)`
    if (this.s.format === "json")
      return `${printableJson({ time: new Date().toISOString(), pool: this.s.pool, stream, dropped: n, msg })}\n`
    return `[${this.s.pool}] ${msg}\n`
  }
}

function settings(option: WorkerLogsOption | undefined, command: readonly string[]): { s: Settings; dir?: string } {
  const base = {
    pool: scriptName(command),
    maxBytes: 10 << 20,
    keep: 5,
    maxLineBytes: 16 << 10,
    maxBufferedBytes: 1 << 20,
    maxLinesPerSecond: 1000,
    maxReadBytesPerSecond: 8 << 20,
  }
  if (option === undefined || option === "prefix" || option === "json" || option === "inherit")
    return { s: { ...base, format: option ?? "prefix" } }
  if (typeof option !== "object" || option === null || Array.isArray(option))
    throw new TypeError(
      `${WHERE}: logs must be "prefix", "json", "inherit" or { ${[...CONFIG_OPTIONS].join(", ")} }, got ${JSON.stringify(option) ?? typeof option}`,
    )
  checkOptions(option, CONFIG_OPTIONS, `${WHERE} logs`)
  const { format = "prefix", pool, dir } = option
  if (format !== "prefix" && format !== "json")
    throw new TypeError(`${WHERE}: logs.format must be "prefix" or "json", got ${JSON.stringify(format)}`)
  if (dir === undefined && (option.maxBytes !== undefined || option.keep !== undefined))
    throw new TypeError(`${WHERE}: logs.maxBytes and logs.keep need logs.dir (the files' directory)`)
  if (dir !== undefined && (typeof dir !== "string" || dir === ""))
    throw new TypeError(`${WHERE}: logs.dir must be a directory's path, got ${JSON.stringify(dir)}`)
  const n = (what: keyof typeof base & keyof WorkerLogsConfig, min: number, max?: number) =>
    checkNumber(option[what], { what: `logs.${what}`, where: WHERE, min, max, dflt: base[what] as number })
  return {
    s: {
      format,
      pool: pool === undefined ? base.pool : checkName(pool, { what: "logs.pool", where: WHERE }),
      maxBytes: n("maxBytes", 4096),
      keep: n("keep", 0, 100),
      maxLineBytes: n("maxLineBytes", 256, 1 << 20),
      maxBufferedBytes: n("maxBufferedBytes", 4096),
      maxLinesPerSecond: checkNumber(option.maxLinesPerSecond, {
        what: "logs.maxLinesPerSecond",
        where: WHERE,
        min: 1,
        infinite: true,
        dflt: base.maxLinesPerSecond,
      }),
      maxReadBytesPerSecond: checkNumber(option.maxReadBytesPerSecond, {
        what: "logs.maxReadBytesPerSecond",
        where: WHERE,
        min: 4096,
        infinite: true,
        dflt: base.maxReadBytesPerSecond,
      }),
    },
    dir,
  }
}

/** The command's script (`bun worker.ts` → "worker"), else its program (`bun -e "…"` → "bun"), as a pool name. */
function scriptName(command: readonly string[]): string {
  const arg = command.slice(1).find((a) => /^[\w./@+-]+$/.test(a) && !a.startsWith("-")) ?? command[0] ?? ""
  const base = arg
    .split("/")
    .pop()!
    .replace(/\.(?:[cm]?[jt]sx?|py)$/, "")
  return base.replace(new RegExp(`[^${NAME_CHARS}]`, "g"), "_").slice(0, 64) || "worker"
}
