// `slotbus status <target> [--once]` for a process that serves serveStatus: its sections as text in a terminal,
// redrawn every second until Ctrl-C. The target is the URL serveStatus printed: http://host:port, or
// unix:/path (a bare /path or ./path too). A target that serves no /status.json is handed to `otherwise` (the HTTP
// hub's own `slotbus status`, which bin/slotbus.ts passes in). Exit 2 when nothing answers at the target.
import { parseArgs } from "node:util"
import type { StatusPart, StatusSection, StatusValue } from "../kit/index.ts"
import type { StatusReport } from "./server.ts"

const EVERY_MS = 1000
const FETCH_TIMEOUT_MS = 5000
const FACTS_WIDTH = 100
/** The most an answer to `slotbus status` may be: a report is some KiB; more is no status server's. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024

/** A problem the user fixes (the target, the server): one line on stderr, exit 2. */
class StatusProblem extends Error {}

type Target = { kind: "unix"; path: string; label: string } | { kind: "http"; url: string; label: string }

/** What the argument names: a unix socket, an http URL, or null when it is neither. */
export function parseTarget(arg: string): Target | null {
  if (arg.startsWith("unix:")) return { kind: "unix", path: arg.slice(5), label: arg }
  if (arg.startsWith("/") || arg.startsWith("./") || arg.startsWith("../"))
    return { kind: "unix", path: arg, label: `unix:${arg}` }
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(arg) ? arg : `http://${arg}`)
    if (url.protocol !== "http:" && url.protocol !== "https:") return null
    const base = url.origin + url.pathname.replace(/\/+$/, "")
    return { kind: "http", url: base, label: base }
  } catch {
    return null
  }
}

/**
 * GET /status.json at the target: the report, or a StatusProblem; for an http URL, null instead of any problem (the
 * HTTP hub's view then looks there, and says what it finds).
 */
async function fetchReport(t: Target): Promise<StatusReport | null> {
  const got =
    t.kind === "unix"
      ? await fetchCapped("http://localhost/status.json", { unix: t.path })
      : await fetchCapped(`${t.url}/status.json`)
  if (t.kind === "http" && !got.ok) return null
  if (!got.answered)
    throw new StatusProblem(
      `nothing answers at ${t.label} (${got.why}); is the process running, and serving its status there?`,
    )
  if (!got.ok) throw new StatusProblem(`${t.label} is not a slotbus status server: GET /status.json ${got.why}`)
  let report: StatusReport | undefined
  try {
    report = JSON.parse(got.text) as StatusReport
  } catch {}
  if (got.res.ok && report && Array.isArray(report.sections)) return report
  if (t.kind === "http") return null
  throw new StatusProblem(
    `${t.label} is not a slotbus status server: GET /status.json answered ${got.res.status} ${clean(got.res.statusText)}`,
  )
}

/**
 * What a GET of `slotbus status` brought: the answer, read whole; or why not, and whether anything answered at
 * all (`answered`: a head came, its body did not, or was more than MAX_ANSWER_BYTES).
 */
export type Fetched =
  | { ok: true; answered: true; res: Response; text: string }
  | { ok: false; answered: boolean; why: string }

/**
 * GET `url` (over the unix socket `unix`, when given) for `slotbus status` and read its body, at most
 * MAX_ANSWER_BYTES of it, head and body within FETCH_TIMEOUT_MS: a server that answers without end holds neither
 * the memory nor the terminal. The HTTP hub's view reads its /health through it too.
 */
export async function fetchCapped(url: string, via: { unix?: string } = {}): Promise<Fetched> {
  const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS)
  const why = (e: unknown, what: string) => {
    const err = e as Error & { code?: string }
    return err.name === "TimeoutError" ? `${what} within ${FETCH_TIMEOUT_MS} ms` : clean(err.code ?? err.message)
  }
  let res: Response
  try {
    res = await fetch(url, { ...via, signal })
  } catch (e) {
    return { ok: false, answered: false, why: why(e, "no answer") }
  }
  const parts: Uint8Array[] = []
  let size = 0
  try {
    // Leaving the loop early cancels the body, which ends the connection.
    for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
      size += chunk.length
      if (size > MAX_ANSWER_BYTES)
        return { ok: false, answered: true, why: `answered more than ${MAX_ANSWER_BYTES / 1024 ** 2} MiB` }
      parts.push(chunk)
    }
  } catch (e) {
    return { ok: false, answered: true, why: `answered ${res.status} but ${why(e, "sent no whole body")}` }
  }
  return { ok: true, answered: true, res, text: new TextDecoder().decode(Buffer.concat(parts)) }
}

// Everything in a section may come from another process (a worker's host label, a subscriber's filter): a string
// holding a terminal escape must not repaint the user's screen.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
const clean = (s: unknown) => String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g, "?")
const show = (v: StatusValue) => (v === true ? "yes" : v === false ? "no" : v === null ? "-" : clean(v))
/** A value printed as a number only if it is one (NaN otherwise): the server sent it, it may be anything. */
const numberOf = (v: unknown): number => (typeof v === "number" ? v : Number.NaN)

function table(columns: string[], rows: StatusValue[][]): string[] {
  const cells = [columns.map((c) => clean(c).toUpperCase()), ...rows.map((r) => r.map(show))]
  const numeric = columns.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number" || r[i] === null))
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)))
  return cells.map((r) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  )
}

function part(p: StatusPart, indent: string): string[] {
  const out: string[] = []
  // facts side by side, a new line past FACTS_WIDTH columns: a terminal's width cuts lines, facts are not lost
  let line = ""
  for (const fact of p.facts.map(([k, v]) => `${clean(k)}: ${show(v)}`)) {
    if (line && line.length + 3 + fact.length > FACTS_WIDTH) out.push(indent + line), (line = "")
    line = line ? `${line}   ${fact}` : fact
  }
  if (line) out.push(indent + line)
  for (const t of p.tables) {
    out.push(`${indent}${clean(t.title).toUpperCase()} (${numberOf(t.rows.length)})`)
    if (t.rows.length === 0) out.push(`${indent}  none`)
    else out.push(...table(t.columns, t.rows).map((l) => `${indent}  ${l}`))
  }
  return out
}

/** Sections as terminal lines, every string cleaned of control characters. */
function renderSections(sections: StatusSection[]): string[] {
  const out: string[] = []
  for (const s of sections) {
    out.push("", `== ${clean(s.kind)} ${clean(s.name)}`)
    for (const w of s.warnings) out.push(`! ${clean(w)}`)
    out.push(...part(s, ""))
    if (s.remote) out.push(`-- across hosts (${clean(s.remote.transport).toUpperCase()})`, ...part(s.remote, "  "))
  }
  return out
}

/** A report as text, each line cut at `width` columns; the HTTP hub's view prints its /health so too. */
export function renderReport(r: StatusReport, width: number): string {
  const up = Math.round(numberOf(r.uptimeMs) / 1000)
  const out = [`${clean(r.title)} — ${clean(r.host)}, pid ${numberOf(r.pid)}, up ${up} s, ${clean(r.at)}`]
  out.push(...renderSections(r.sections))
  return `${out.map((l) => (l.length > width ? l.slice(0, width) : l)).join("\n")}\n`
}

/**
 * Runs `slotbus status` with `argv`; a target without /status.json (or none at all) goes to `otherwise`, the HTTP
 * hub's view. Resolves with the exit code.
 */
export async function runStatusCli(argv: string[], otherwise: (argv: string[]) => Promise<number>): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { once: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    })
  } catch {
    return otherwise(argv) // its own parser says what is wrong, in the same words as before
  }
  if (parsed.values.help || parsed.positionals.length !== 1) return otherwise(argv) // one usage text, the hub's
  const target = parseTarget(parsed.positionals[0]!)
  if (!target) return otherwise(argv)
  try {
    const first = await fetchReport(target)
    if (first === null) return otherwise(argv)
    return await watch(target, first, parsed.values.once === true)
  } catch (e) {
    if (!(e instanceof StatusProblem)) throw e
    process.stderr.write(`slotbus status: ${e.message}\n`)
    return 2
  }
}

function watch(target: Target, first: StatusReport, once: boolean): Promise<number> {
  return redraw(first, once, renderReport, () =>
    fetchReport(target).then(
      (r) => r ?? new StatusProblem(`${target.label} no longer serves /status.json`),
      (e: unknown) => {
        if (e instanceof StatusProblem) return e
        throw e
      },
    ),
  )
}

/**
 * Prints `first` once (`once`), or redraws every second until Ctrl-C (exit 0): `next()` is the next report, or
 * an Error whose message is shown instead while the target is away (the watch goes on). The HTTP hub's view too.
 */
export async function redraw<T>(
  first: T,
  once: boolean,
  draw: (report: T, width: number) => string,
  next: () => Promise<T | Error>,
): Promise<number> {
  if (once) {
    process.stdout.write(draw(first, Infinity))
    return 0
  }
  const tty = process.stdout.isTTY === true
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>()
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  let report: T | Error = first
  for (;;) {
    const text =
      report instanceof Error
        ? `slotbus status: ${report.message}; trying again every second (Ctrl-C stops)\n`
        : draw(report, tty ? (process.stdout.columns ?? 120) : Infinity)
    // On a terminal each frame replaces the last; into a pipe or file they follow one another, like vmstat 1.
    process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`)
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = new Promise<"tick">((r) => (timer = setTimeout(() => r("tick"), EVERY_MS)))
    const why = await Promise.race([stopped.then(() => "stop" as const), tick])
    clearTimeout(timer)
    if (why === "stop") return 0
    report = await next()
  }
}
