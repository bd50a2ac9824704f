// The one child-process helper of the bench and the tests: a spawned process whose stdout is split into lines
// (waitLine), whose stderr is kept for error messages, and which stopAll/killAll end however a run ends.
import type { Subprocess } from "bun"

export interface SpawnOptions {
  env?: Record<string, string | undefined>
  cwd?: string
  /** "pipe" lets `write` send the child text; "ignore" (the default) gives it no stdin. */
  stdin?: "ignore" | "pipe"
  /** Opens Bun's IPC channel and calls this with every message the child sends. */
  ipc?: (message: unknown) => void
  /** How IPC messages are encoded: "advanced" (structured clone, the default) or "json". */
  serialization?: "advanced" | "json"
  /** Starts it in a session and process group of its own (it leads them): `groupSignal` reaches it and its children. */
  detached?: boolean
}

const live = new Set<Child>()
let reapedCpuS = 0

/** Output a pipe may still deliver after its process exited is read for at most this long: a grandchild that
 * inherited the pipe must not keep `exited` pending. */
const DRAIN_CAP_MS = 2000

export class Child {
  readonly proc: Subprocess<"ignore" | "pipe", "pipe", "pipe">
  /** Every complete stdout line so far (and the unterminated tail once stdout ended). */
  readonly lines: string[] = []
  /** Resolves with the exit code once the process exited and its output was read. */
  readonly exited: Promise<number>
  private stderrText = ""
  private stdoutEnded = false
  private readonly waiters = new Set<() => void>()

  constructor(
    readonly cmd: string[],
    opts: SpawnOptions = {},
  ) {
    this.proc = Bun.spawn(cmd, {
      stdin: opts.stdin ?? "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: opts.detached,
      ...(opts.ipc ? { ipc: (m: unknown) => opts.ipc!(m), serialization: opts.serialization ?? "advanced" } : {}),
    })
    live.add(this)
    const stdoutDone = this.read(this.proc.stdout, (l) => this.lines.push(l)).then(() => {
      this.stdoutEnded = true
      this.notify()
    })
    const stderrDone = this.read(this.proc.stderr, (l) => (this.stderrText += l + "\n"))
    this.exited = this.proc.exited.then(async (code) => {
      live.delete(this)
      const u = this.proc.resourceUsage()
      if (u) reapedCpuS += Number(u.cpuTime.total) / 1e6
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([
        Promise.allSettled([stdoutDone, stderrDone]),
        new Promise((r) => (timer = setTimeout(r, DRAIN_CAP_MS))),
      ])
      clearTimeout(timer)
      return code
    })
  }

  get pid(): number {
    return this.proc.pid
  }
  /** Everything the child wrote to stderr so far. */
  get stderr(): string {
    return this.stderrText
  }
  /** stdout and stderr so far, labelled: for error messages. */
  get output(): string {
    return `stdout:\n${this.lines.join("\n")}\nstderr:\n${this.stderrText}`
  }
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  private async read(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) {
    const decoder = new TextDecoder()
    let buf = ""
    try {
      for await (const chunk of stream) {
        buf += decoder.decode(chunk, { stream: true })
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          onLine(buf.slice(0, nl))
          buf = buf.slice(nl + 1)
        }
        this.notify()
      }
    } catch {} // the stream errors when the process is killed mid-read: what was read stays
    if (buf) onLine(buf)
  }

  private notify() {
    for (const w of this.waiters) w()
  }

  /** The first stdout line matching `re`, printed already or later; rejects with the child's output if the
   * child ends stdout without one or none comes within `timeoutMs`. */
  waitLine(re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const find = () => {
      for (const l of this.lines) {
        const m = l.match(re)
        if (m) return m
      }
    }
    return this.waitFor(find, `a line matching ${re}`, timeoutMs)
  }

  /** Stdout line number `n` (from 0), printed already or later: for children that answer line by line. */
  line(n: number, timeoutMs = 15_000): Promise<string> {
    return this.waitFor(() => this.lines[n], `line ${n}`, timeoutMs)
  }

  private waitFor<T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const done = (f: () => void) => {
        clearTimeout(timer)
        this.waiters.delete(check)
        f()
      }
      const why = (how: string) => new Error(`${how} ${what} (pid ${this.pid}, ${this.cmd.join(" ")})\n${this.output}`)
      const check = () => {
        const found = find()
        if (found !== undefined) return done(() => resolve(found))
        if (this.stdoutEnded) done(() => reject(why("process ended without printing")))
      }
      if (Number.isFinite(timeoutMs))
        timer = setTimeout(() => done(() => reject(why(`nothing within ${timeoutMs}ms:`))), timeoutMs)
      this.waiters.add(check)
      check()
    })
  }

  /** `work`, or a rejection naming `what` with the tail of the child's stderr if the child exits first. */
  whileAlive<T>(work: Promise<T>, what = this.cmd[0]!): Promise<T> {
    const died = this.exited.then((code) => {
      throw new Error(`${what} exited with ${code}: ${this.stderrText.trim().split("\n").slice(-3).join(" | ")}`)
    })
    died.catch(() => {}) // once `work` has won, a later exit is nobody's error
    return Promise.race([work, died])
  }

  /** Sends `sig` if the child still runs; does not wait. */
  signal(sig: NodeJS.Signals | number): void {
    if (this.running) this.proc.kill(sig)
  }

  /**
   * Sends `sig` to the child's whole process group (spawned with `detached`), as a terminal sends Ctrl-C to its
   * foreground group: the child and every process it started in its group.
   */
  groupSignal(sig: NodeJS.Signals): void {
    process.kill(-this.pid, sig)
  }

  /** kill -9 (or `sig`), then waits for the exit; resolves with the exit code. */
  async kill(sig: NodeJS.Signals | number = "SIGKILL"): Promise<number> {
    this.signal(sig)
    return this.exited
  }

  /** SIGTERM, SIGKILL if it still runs `graceMs` later; resolves with the exit code once it exited. */
  async stop(graceMs = 2000): Promise<number> {
    this.signal("SIGTERM")
    let timer: ReturnType<typeof setTimeout> | undefined
    const grace = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), graceMs)))
    if ((await Promise.race([this.proc.exited, grace])) === "late") this.signal("SIGKILL")
    clearTimeout(timer)
    return this.exited
  }

  /** Writes `text` to the child's stdin (children spawned with stdin: "pipe" only). */
  write(text: string): void {
    const sink = this.proc.stdin
    if (typeof sink !== "object") throw new Error(`${this.cmd[0]} was spawned without stdin: "pipe"`)
    sink.write(text)
    void sink.flush()
  }

  /** Sends a message over the IPC channel (children spawned with `ipc` only). */
  send(message: unknown): void {
    this.proc.send(message)
  }
}

/** Spawns `cmd` with stdout and stderr piped and collected; stopAll/killAll will end it. */
export function spawn(cmd: string[], opts?: SpawnOptions): Child {
  return new Child(cmd, opts)
}

/** kill -9 every child still running and waits for them: for afterEach/afterAll. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.kill()))
}

/** kill -9 every child still running without waiting: safe in an exit handler. */
export function killAll(): void {
  for (const c of live) c.signal("SIGKILL")
}

/** kill -9 every child on Ctrl-C, SIGTERM or exit: a bench's fronts (whose workers end with them) go with it. */
export function killAllOnExit(): void {
  const onSignal = () => (killAll(), process.exit(130))
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  process.on("exit", killAll)
}

/** CPU seconds used by every child that has exited so far (with their own reaped children), spawned or run. */
export function reapedChildrenCpuSeconds(): number {
  return reapedCpuS
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
  /** CPU seconds the command used (user + system, its threads and reaped children), NaN where unknown. */
  cpuS: number
}

export interface RunOptions {
  env?: Record<string, string | undefined>
  cwd?: string
  /** What the child reads on stdin (nothing if not given). */
  stdin?: string | Uint8Array
  /** kill -9 after this long (the code is then 137); no limit if not given. */
  timeoutMs?: number
}

/** Runs `cmd` to its end and returns its exit code and output. */
export async function run(cmd: string[], opts: RunOptions = {}): Promise<RunResult> {
  const stdin = typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin
  const proc = Bun.spawn(cmd, {
    stdin: stdin ?? "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  })
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs)
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ])
  clearTimeout(timer)
  const u = proc.resourceUsage()
  const cpuS = u ? Number(u.cpuTime.total) / 1e6 : NaN
  if (u) reapedCpuS += cpuS
  return { code, stdout, stderr, cpuS }
}
