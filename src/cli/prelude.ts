// What every command of `slotbus` shares: reading its arguments, its --help, and how a mistake the user fixes
// becomes one line on stderr and an exit code (no stack). Exit codes: 0 done; 2 a usage mistake (a flag, an
// argument, a target that is not there); a command gives 1 (and `call` 3) to what it says in its --help.
import { readFileSync } from "node:fs"
import { basename } from "node:path"
import { type ParseArgsConfig, parseArgs } from "node:util"
import { printable, procStat } from "../kit/index.ts"

// C0, DEL, C1 and bidi controls (kit/checks/escape.ts escapes these, and backslashes, which a message keeps)
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it escapes
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/** A mistake the user fixes: `slotbus <command>: <message>` on stderr (the usage text after it when given). */
export class CliProblem extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
    readonly usage?: string,
  ) {
    super(message)
  }
}

/** node:util's parseArgs, its complaint ("Unknown option '--x'") handed to `problem` to throw. */
export function parse<T extends ParseArgsConfig>(
  config: T,
  problem: (message: string) => CliProblem,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (e) {
    throw problem((e as Error).message.replace(/\s*\n\s*/g, " ")) // one line: its sentences are not a worker's words
  }
}

/** parseArgs' complaint as one short line: its first sentence ("unknown option '--prot'"), then `hint`. */
export function firstSentence(message: string, hint: string): string {
  const first = message.split(/\.\s|\.?\n/)[0]!
  return `${first.charAt(0).toLowerCase()}${first.slice(1)}; ${hint}`
}

/** `usage` on stdout: what --help does. */
export function help(usage: string): number {
  process.stdout.write(`${usage}\n`)
  return 0
}

/**
 * Runs a command's body: a CliProblem it throws (or an error `mine` says is the user's, exit 2) is printed as one
 * line, `slotbus <name>: <message>`, and becomes the exit code; anything else is a bug and goes on up.
 */
export async function runCommand(
  name: string,
  body: () => Promise<number>,
  mine: (e: unknown) => e is Error = (e): e is Error => false,
): Promise<number> {
  try {
    return await body()
  } catch (e) {
    if (!(e instanceof CliProblem) && !mine(e)) throw e
    const usage = e instanceof CliProblem && e.usage !== undefined ? `\n${e.usage}\n` : ""
    // a message may carry a worker's or a server's words (another host's, over NATS): no control reaches the terminal
    process.stderr.write(`slotbus ${name}: ${e.message.replace(CONTROLS, (c) => printable(c))}\n${usage}`)
    return e instanceof CliProblem ? e.exitCode : 2
  }
}

// The process that started this one, taken as the command's module loads.
const startedBy = process.ppid

/** `pid`'s parent, from /proc (Linux); null when it cannot be read. */
function parentOf(pid: number): number | null {
  const ppid = procStat(pid)?.[1]
  return ppid === undefined ? null : Number(ppid)
}

/**
 * When this process's parent is a `sh -c` (how npm and npx run a command), the sh's parent (npm): a SIGHUP to npm
 * kills it without passing it on, and its sh, reparented, waits on. Null otherwise, or off Linux.
 */
function npmAbove(): number | null {
  try {
    const [argv0, flag] = readFileSync(`/proc/${startedBy}/cmdline`, "latin1").split("\0")
    if (flag !== "-c" || !/^(?:da|ba)?sh$/.test(basename(argv0 ?? ""))) return null
  } catch {
    return null
  }
  return parentOf(startedBy)
}

/**
 * The npm above our `sh -c`, taken as the command's module loads: a hub that looked only once it was listening kept
 * the sh's new parent for npm when npm died (a SIGHUP) during its start, and ran on.
 */
const npmAtStart = process.env.npm_command || process.env.npm_lifecycle_event ? npmAbove() : null

/**
 * Resolves at SIGINT or SIGTERM (Ctrl-C, a service manager's stop), and for a command that npm, npx or bunx started
 * (they set npm_command, npm_lifecycle_event) once its parent is gone: npm passes a SIGTERM to its `sh -c` alone,
 * which dies of it without passing it on, and a kill -9 of bunx or npx leaves its child; the command would run on
 * under init, its port held. Under a `sh -c`, also once the sh's parent (npm) is gone: a SIGHUP kills npm alone,
 * and its sh waits on. `off` forgets them all.
 */
export function untilStopped(name: string): {
  stopped: Promise<void>
  off: () => void
  /** Waits `ms`, or less if it is stopped meanwhile: whether it was. */
  pause: (ms: number) => Promise<boolean>
} {
  const { promise: stopped, resolve } = Promise.withResolvers<void>()
  let orphaned: ReturnType<typeof setInterval> | undefined
  const off = () => {
    process.off("SIGINT", stop)
    process.off("SIGTERM", stop)
    clearInterval(orphaned)
  }
  const stop = () => {
    off()
    resolve()
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  if (process.env.npm_command || process.env.npm_lifecycle_event) {
    const npm = npmAtStart
    // a reparented process has a new ppid (init, or a subreaper): once a second is cheap, and soon enough for a port
    orphaned = setInterval(() => {
      if (process.ppid !== startedBy)
        process.stderr.write(
          `slotbus ${name}: started by npm, npx or bunx, and its parent (pid ${startedBy}) is gone: stopping as on SIGTERM\n`,
        )
      else if (npm !== null && parentOf(startedBy) !== npm)
        process.stderr.write(
          `slotbus ${name}: started by npm or npx (pid ${npm}), which is gone (its sh -c, pid ${startedBy}, waits on): stopping as on SIGTERM\n`,
        )
      else return
      stop()
    }, 1000)
    orphaned.unref()
  }
  const pause = async (ms: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)))
    const was = await Promise.race([stopped.then(() => true), tick])
    clearTimeout(timer)
    return was
  }
  return { stopped, off, pause }
}
