// `slotbus status [target] [--once]`: what a process serving serveStatus, or an HTTP hub, is doing, as text in a
// terminal redrawn every second until Ctrl-C (like pm2 monit); --once prints it once. The target is the URL
// serveStatus printed: http://host:port, or unix:/path (a bare /path or ./path too). A target that serves no
// /status.json (or none at all: the hub at DEFAULT_URL) gets the hub's own view, its GET /health drawn as its
// status section (http/hub/section.ts). Exit 2 when nothing answers at the target.
import { parseArgs } from "node:util"
import type { HubHealth } from "../http/index.ts"
import { hubReport } from "../http/internal.ts"
import type { StatusReport } from "../status/index.ts"
import { sectionOf } from "../kit/index.ts"
import { CliProblem, firstSentence, help, parse, runCommand } from "./prelude.ts"
import { clean, renderReport } from "./report.ts"
import { fetchCapped, redraw } from "./watch.ts"

const DEFAULT_URL = "http://127.0.0.1:3200"

const USAGE = `usage: slotbus status [target] [--once]

Shows what the HTTP hub at the target (default ${DEFAULT_URL}) knows: its workers (pid, slots in use, in flight,
stuck, served, restarts, latency percentiles), its routes, its events topic's subscribers with their lag, recent
evictions, and with NATS what it knows across hosts. The same, live in a browser: <hub-url>/health/status.

The target may also be what serveStatus (slotbus/status) printed for an app: http://127.0.0.1:9300 or
unix:/run/app/status.sock. Then it shows that app's buses (workers here and by host, slots, latency, pools and
restarts), topics and contests, and what each knows over NATS; its page is the URL itself.
Redrawn every second until Ctrl-C; --once prints it once and exits.`

const HELP_HINT = `run "slotbus status --help" for the options`

const OPTIONS = { once: { type: "boolean" }, help: { type: "boolean", short: "h" } } as const

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

/** Runs `slotbus status` with `argv` (the arguments after "status"); resolves with the exit code. */
export function runStatusCli(argv: string[]): Promise<number> {
  return runCommand("status", async () => {
    let parsed
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS })
    } catch {
      return hubView(argv) // its parser says what is wrong, in the same words as before
    }
    if (parsed.values.help || parsed.positionals.length !== 1) return hubView(argv) // one usage text, the hub's
    const target = parseTarget(parsed.positionals[0]!)
    // a hub's URL: its view at once (a GET /status.json first would count in the hub's 404s)
    if (!target || (target.kind === "http" && (await isHubAt(target.url)))) return hubView(argv)
    const first = await fetchReport(target)
    if (first === null) return hubView(argv)
    return redraw<StatusReport>(first, parsed.values.once === true, renderReport, () =>
      fetchReport(target).then(
        (r) => r ?? new CliProblem(`${target.label} no longer serves /status.json`),
        (e: unknown) => {
          if (e instanceof CliProblem) return e
          throw e
        },
      ),
    )
  })
}

/**
 * GET /status.json at the target: the report, or a CliProblem; for an http URL, null instead of any problem (the
 * HTTP hub's view then looks there, and says what it finds).
 */
async function fetchReport(t: Target): Promise<StatusReport | null> {
  const got =
    t.kind === "unix"
      ? await fetchCapped("http://localhost/status.json", { unix: t.path })
      : await fetchCapped(`${t.url}/status.json`)
  if (t.kind === "http" && !got.ok) return null
  if (!got.answered)
    throw new CliProblem(
      `nothing answers at ${t.label} (${got.why}); is the process running, and serving its status there?`,
    )
  if (!got.ok) throw new CliProblem(`${t.label} is not a slotbus status server: GET /status.json ${got.why}`)
  let report: StatusReport | undefined
  try {
    report = JSON.parse(got.text) as StatusReport
  } catch {}
  // a server of another version, or an app's own section the server passed on as it was: drawn as far as it goes
  if (report && Array.isArray(report.sections))
    report.sections = report.sections.map((s, i) => sectionOf(s, `section ${i}`))
  if (got.res.ok && report && Array.isArray(report.sections) && draws(() => renderReport(report, Infinity)))
    return report
  if (t.kind === "http") return null
  throw new CliProblem(
    `${t.label} is not a slotbus status server: GET /status.json answered ${got.res.status} ${clean(got.res.statusText)}`,
  )
}

/** Whether an HTTP hub answers at `url`: its GET /health is a hub's. */
async function isHubAt(url: string): Promise<boolean> {
  const got = await fetchCapped(`${url}/health`)
  if (!got.ok) return false
  try {
    return isHealth(JSON.parse(got.text) as HubHealth)
  } catch {
    return false
  }
}

/** The HTTP hub's view: its GET /health, redrawn. */
async function hubView(argv: string[]): Promise<number> {
  const parsed = parse(
    { args: argv, allowPositionals: true, options: OPTIONS },
    (m) => new CliProblem(firstSentence(m, HELP_HINT)),
  )
  if (parsed.values.help) return help(USAGE)
  if (parsed.positionals.length > 1)
    throw new CliProblem(`one hub URL at most, got ${parsed.positionals.length}; ${HELP_HINT}`)
  const url = hubUrl(parsed.positionals[0] ?? DEFAULT_URL)

  const first = await fetchHealth(url) // a hub that is not there now is a mistake in the URL: exit 2
  return redraw<HubHealth>(
    first,
    parsed.values.once === true,
    (h, width) => renderReport(hubReport(h, url.origin), width),
    () =>
      fetchHealth(url).catch((e: unknown) => {
        if (e instanceof CliProblem) return e // the hub went away: say so, keep trying
        throw e
      }),
  )
}

/** Whether a report from outside (the server may be anything) can be drawn: a malformed entry throws there. */
function draws(draw: () => unknown): boolean {
  try {
    draw()
    return true
  } catch {
    return false
  }
}

const isHealth = (h: HubHealth) =>
  [h.workers, h.routes, h.topics, h.evicted, h.nats ?? []].every(Array.isArray) &&
  [h.counters, h.sse].every((o) => typeof o === "object" && o !== null)

function hubUrl(arg: string): URL {
  let url: URL
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(arg) ? arg : `http://${arg}`)
  } catch {
    throw new CliProblem(`${JSON.stringify(arg)} is not a URL; give the hub's, e.g. ${DEFAULT_URL}`)
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new CliProblem(`the hub URL must be http://host:port, got ${JSON.stringify(arg)}`)
  return url
}

async function fetchHealth(base: URL): Promise<HubHealth> {
  const where = base.origin + base.pathname.replace(/\/+$/, "")
  const got = await fetchCapped(`${where}/health`)
  if (!got.answered)
    throw new CliProblem(
      `nothing answers at ${where} (${got.why}); start the hub ("slotbus hub") or the app serving its status there, or check the URL`,
    )
  if (!got.ok) throw new CliProblem(`${where} is not a slotbus hub: GET /health ${got.why}`)
  const { res } = got
  const answered = `${res.status} ${escaped(res.statusText)}`
  if (res.status === 401 || res.status === 403)
    throw new CliProblem(
      `${where}/health answered ${answered}: something in front of the hub wants credentials ` +
        "(the hub itself answers /health without a token); point slotbus status at the hub's own address",
    )
  let health: HubHealth | undefined
  try {
    health = JSON.parse(got.text) as HubHealth
  } catch {}
  if (
    !res.ok ||
    health?.status !== "ok" ||
    !isHealth(health) ||
    !draws(() => renderReport(hubReport(health, where), 80))
  )
    throw new CliProblem(
      `${where} is not a slotbus hub: GET /health answered ${answered}${res.ok ? " without a hub's report" : ""}`,
    )
  return health
}

// A statusText holding a terminal escape must not repaint the user's screen (the report is cleaned as it is drawn).
const escaped = (s: unknown) =>
  String(s).replace(/[\p{Cc}\p{Cf}]/gu, (c) => {
    const h = c.codePointAt(0)!.toString(16)
    return h.length <= 2 ? `\\x${h.padStart(2, "0")}` : `\\u${h.padStart(4, "0")}`
  })
