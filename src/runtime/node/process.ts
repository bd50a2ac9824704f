// Child processes and stdout on Node, as the contract's Process and OutputSink (issue 67): the
// Supervisor (kit/supervision) spawns with pipes, files or inherited stdio; the stdio bus writes a worker's stdin
// through a sink and reads its stdout and stderr with `for await`; the CLI writes its stdout through a sink.
import { type ChildProcess, spawn as nodeSpawn, type StdioOptions } from "node:child_process"
import { accessSync, constants as fsc, statSync } from "node:fs"
import { constants as osc } from "node:os"
import { delimiter, resolve } from "node:path"
import type { Readable, Writable } from "node:stream"
import type { OutputSink, Process, SpawnOptions } from "../runtime.ts"

/**
 * The contract's OutputSink over a Writable: write() hands the bytes to the stream and says how many; flush()
 * is the count when the pipe has taken everything written, else a promise settled once it has (rejected when the
 * pipe broke: EPIPE, the reader gone). A broken pipe is never an uncaught 'error' event.
 */
class PipeSink implements OutputSink {
  private unflushed = 0
  private writes = 0
  private written = 0
  private error: Error | null = null
  private readonly waiters: { upTo: number; done: () => void; reject: (e: Error) => void }[] = []

  private readonly out: Writable
  // no parameter properties in src/runtime: Node runs it with its types stripped (test/runtime/runtime.test.ts)
  constructor(out: Writable) {
    this.out = out
    out.on("error", (e: Error) => this.failed(e))
  }

  write(chunk: string | Uint8Array): number {
    const n = typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength
    this.unflushed += n
    this.writes++
    this.out.write(chunk, this.onWritten)
    return n
  }

  flush(): number | Promise<number> {
    const n = this.unflushed
    this.unflushed = 0
    if (this.error) return Promise.reject(this.error)
    if (!this.out.destroyed && this.out.writableLength === 0) return n // the pipe took it all in the write itself
    if (this.written === this.writes) return Promise.reject(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }))
    return new Promise((resolve, reject) => this.waiters.push({ upTo: this.writes, done: () => resolve(n), reject }))
  }

  // Writes complete in order: the callback of the last write a flush covers settles that flush.
  private readonly onWritten = (e?: Error | null) => {
    this.written++
    if (e) return this.failed(e)
    while (this.waiters.length > 0 && this.waiters[0]!.upTo <= this.written) this.waiters.shift()!.done()
  }

  private failed(e: Error): void {
    this.error ??= e
    for (const w of this.waiters.splice(0)) w.reject(this.error)
  }
}

/**
 * The contract's Process over a ChildProcess: pid, kill, exitCode and signalCode once it ended, `exited` (its exit code, or
 * 128 + the signal's number, as Bun's), a piped stdin as a sink and a piped stdout and stderr as async-iterable
 * streams of bytes.
 */
class ChildProcessHandle implements Process {
  readonly pid: number
  readonly stdin: PipeSink | undefined
  readonly stdout: Readable | undefined
  readonly stderr: Readable | undefined
  readonly exited: Promise<number>
  exitCode: number | null = null
  signalCode: NodeJS.Signals | null = null

  private readonly child: ChildProcess

  constructor(child: ChildProcess) {
    this.child = child
    this.pid = child.pid!
    this.stdin = child.stdin ? new PipeSink(child.stdin) : undefined
    this.stdout = child.stdout ?? undefined
    this.stderr = child.stderr ?? undefined
    for (const r of [this.stdout, this.stderr]) r?.on("error", () => {}) // a reader sees it; nobody reading: no crash
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        this.exitCode = code
        this.signalCode = signal
        resolve(code ?? 128 + (osc.signals[signal!] ?? 0))
      }),
    )
  }

  /** Sends `signal` (SIGTERM by default); nothing once it has exited. */
  kill(signal: NodeJS.Signals | number = "SIGTERM"): void {
    if (this.exitCode === null && this.signalCode === null) this.child.kill(signal)
  }
}

/**
 * Starts `command` (the program, looked up on the env's PATH, then its arguments). Throws, as Bun.spawn does, when it
 * cannot be started at all: no such program or cwd, not executable.
 */
export function spawn(command: string[], options: SpawnOptions = {}): Process {
  const { stdin = "ignore", stdout = "pipe", stderr = "inherit", cwd, env, detached } = options
  const stdio: StdioOptions = options.stdio ?? [stdin, stdout, stderr]
  const [file, ...args] = command
  if (!file) throw new TypeError("spawn: the command is empty")
  const child = nodeSpawn(file, args, { stdio, cwd, env, detached })
  if (child.pid !== undefined) return new ChildProcessHandle(child)
  // Node says why on the next tick ('error'); Bun throws at once, and the Supervisor counts on that
  child.on("error", () => {})
  throw notStarted(file, cwd, env?.PATH ?? process.env.PATH ?? "")
}

function notStarted(file: string, cwd: string | undefined, path: string): Error {
  const error = (code: string, what: string) =>
    Object.assign(new Error(`${code}: ${what}, posix_spawn '${file}'`), { code, path: file })
  if (cwd !== undefined && !isDirectory(cwd)) return error("ENOENT", `no such directory (cwd ${cwd})`)
  const base = cwd ?? process.cwd()
  const candidates = file.includes("/")
    ? [resolve(base, file)]
    : path.split(delimiter).map((d) => resolve(base, d, file))
  const found = candidates.find((c) => isFile(c))
  if (!found) return error("ENOENT", "no such file or directory")
  try {
    accessSync(found, fsc.X_OK)
  } catch {
    return error("EACCES", "permission denied")
  }
  return error("EAGAIN", "the system refused a new process or its pipes (EAGAIN, EMFILE or ENFILE)")
}

function isDirectory(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false
}
function isFile(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false })?.isFile() ?? false
}

let ownStdout: PipeSink | undefined
/** This process's stdout as a sink (one for the process, as its stdout is one stream). */
export const stdoutSink = (): OutputSink => (ownStdout ??= new PipeSink(process.stdout))
