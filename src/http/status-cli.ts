// `slotbus status [hub-url] [--once]`: the hub's GET /health, as its status section (hub/section.ts) drawn by
// src/status, redrawn every second (like pm2 monit) until Ctrl-C; --once prints it once. Exit 2 when no hub
// answers at the URL. What is its own: the default URL, and what it says of a server that is no hub.
import { parseArgs } from "node:util"
import { fetchCapped, redraw, renderReport } from "../status/internal.ts"
import type { HubHealth } from "./hub/health.ts"
import { hubReport } from "./hub/section.ts"

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

/** A problem the user fixes (the URL, the hub): one line on stderr, exit 2. */
class StatusProblem extends Error {}

/** Runs `slotbus status` with `argv` (the arguments after "status"); resolves with the exit code. */
export async function runStatusCli(argv: string[]): Promise<number> {
  try {
    return await run(argv)
  } catch (e) {
    if (!(e instanceof StatusProblem)) throw e
    process.stderr.write(`slotbus status: ${e.message}\n`)
    return 2
  }
}

async function run(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { once: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    })
  } catch (e) {
    const first = String((e as Error).message).split(/\.\s|\.?\n/)[0]!
    throw new StatusProblem(`${first.charAt(0).toLowerCase()}${first.slice(1)}; ${HELP_HINT}`)
  }
  if (parsed.values.help) {
    console.log(USAGE)
    return 0
  }
  if (parsed.positionals.length > 1)
    throw new StatusProblem(`one hub URL at most, got ${parsed.positionals.length}; ${HELP_HINT}`)
  const url = hubUrl(parsed.positionals[0] ?? DEFAULT_URL)

  const first = await fetchHealth(url) // a hub that is not there now is a mistake in the URL: exit 2
  return redraw(
    first,
    parsed.values.once === true,
    (h, width) => renderReport(hubReport(h, url.origin), width),
    () =>
      fetchHealth(url).catch((e: unknown) => {
        if (e instanceof StatusProblem) return e // the hub went away: say so, keep trying
        throw e
      }),
  )
}

const isHealth = (h: HubHealth) =>
  [h.workers, h.routes, h.topics, h.evicted, h.nats ?? []].every(Array.isArray) &&
  [h.counters, h.sse].every((o) => typeof o === "object" && o !== null)

function hubUrl(arg: string): URL {
  let url: URL
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(arg) ? arg : `http://${arg}`)
  } catch {
    throw new StatusProblem(`${JSON.stringify(arg)} is not a URL; give the hub's, e.g. ${DEFAULT_URL}`)
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new StatusProblem(`the hub URL must be http://host:port, got ${JSON.stringify(arg)}`)
  return url
}

async function fetchHealth(base: URL): Promise<HubHealth> {
  const where = base.origin + base.pathname.replace(/\/+$/, "")
  const got = await fetchCapped(`${where}/health`)
  if (!got.answered)
    throw new StatusProblem(
      `nothing answers at ${where} (${got.why}); start the hub ("slotbus hub") or the app serving its status there, or check the URL`,
    )
  if (!got.ok) throw new StatusProblem(`${where} is not a slotbus hub: GET /health ${got.why}`)
  const { res } = got
  const answered = `${res.status} ${clean(res.statusText)}`
  if (res.status === 401 || res.status === 403)
    throw new StatusProblem(
      `${where}/health answered ${answered}: something in front of the hub wants credentials ` +
        "(the hub itself answers /health without a token); point slotbus status at the hub's own address",
    )
  let health: HubHealth | undefined
  try {
    health = JSON.parse(got.text) as HubHealth
  } catch {}
  if (!res.ok || health?.status !== "ok" || !isHealth(health))
    throw new StatusProblem(
      `${where} is not a slotbus hub: GET /health answered ${answered}${res.ok ? " without a hub's report" : ""}`,
    )
  return health
}

// A statusText holding a terminal escape must not repaint the user's screen (the report is cleaned as it is drawn).
const clean = (s: unknown) =>
  String(s).replace(/[\p{Cc}\p{Cf}]/gu, (c) => {
    const h = c.codePointAt(0)!.toString(16)
    return h.length <= 2 ? `\\x${h.padStart(2, "0")}` : `\\u${h.padStart(4, "0")}`
  })
