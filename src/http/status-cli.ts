// `slotbus status [hub-url] [--once]`: the hub's GET /health as tables in a terminal, redrawn every second (like
// pm2 monit) until Ctrl-C; --once prints them once. Exit 2 when no hub answers at the URL.
import { parseArgs } from "node:util"
import { fetchCapped, numberOf as n, redraw, renderSections } from "../status/internal.ts"
import type { HubHealth } from "./hub/health.ts"

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
    (h, width) => render(h, url, width),
    () =>
      fetchHealth(url).catch((e: unknown) => {
        if (e instanceof StatusProblem) return e // the hub went away: say so, keep trying
        throw e
      }),
  )
}

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
  if (!res.ok || health?.status !== "ok" || !Array.isArray(health.workers))
    throw new StatusProblem(
      `${where} is not a slotbus hub: GET /health answered ${answered}${res.ok ? " without a hub's report" : ""}`,
    )
  return health
}

// Everything a worker or a topic member chose (names, routes, filters) goes through `clean`, and every number
// through `n` (a number, or NaN): a route holding a terminal escape, or a server sending one as a pid, must not
// repaint the user's screen.
const clean = (s: unknown) =>
  String(s).replace(/[\p{Cc}\p{Cf}]/gu, (c) => {
    const h = c.codePointAt(0)!.toString(16)
    return h.length <= 2 ? `\\x${h.padStart(2, "0")}` : `\\u${h.padStart(4, "0")}`
  })

type Cell = string | number
/** Columns whose heading starts with ">" are right-aligned numbers. */
function table(head: string[], rows: Cell[][]): string[] {
  const right = head.map((h) => h.startsWith(">"))
  const titles = head.map((h) => h.replace(/^>/, ""))
  const all = [titles, ...rows.map((r) => r.map(String))]
  const widths = titles.map((_, i) => Math.max(...all.map((r) => r[i]!.length)))
  return all.map((r) =>
    r
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  )
}

function us(v: number, count: number): string {
  if (count === 0) return "-"
  if (v < 10) return `${v.toFixed(1)}µs`
  if (v < 1000) return `${Math.round(v)}µs`
  if (v < 1e6) return `${(v / 1000).toFixed(v < 1e4 ? 2 : 1)}ms`
  return `${(v / 1e6).toFixed(2)}s`
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${s % 60}s`
  const h = Math.floor(m / 60)
  return h < 48 ? `${h}h${m % 60}m` : `${Math.floor(h / 24)}d${h % 24}h`
}

/** The report as text, each line cut at `width` columns. */
function render(h: HubHealth, url: URL, width: number): string {
  const c = h.counters
  const out: string[] = []
  out.push(`slotbus hub ${clean(url.origin)} · host ${clean(h.host)} · pid ${n(h.pid)} · up ${duration(n(h.uptimeMs))}`)
  out.push(
    [
      `requests ${n(c.requests)}`,
      `responses ${n(c.responses)}`,
      `4xx ${n(c.notFound) + n(c.methodNotAllowed) + n(c.tooLarge)}`,
      `5xx ${n(c.unavailable) + n(c.badGateway) + n(c.timeouts) + n(c.workerErrors)}`,
      `timeouts ${n(c.timeouts)}`,
      `aborts ${n(c.clientAborts)}`,
      `evictions ${n(c.evictions)}`,
      `emitted ${n(c.emitted)}`,
      `SSE clients ${n(h.sse.connections) + n(h.sse.eventsClients) + n(h.sse.statusClients)}`,
    ].join("  "),
  )

  const remote = h.workers.filter((w) => w.transport === "nats").length
  out.push(
    "",
    remote === 0
      ? `WORKERS (all on ${clean(h.host)}: they share memory with the hub)`
      : `WORKERS (${h.workers.length - remote} on ${clean(h.host)} over shared memory, ${remote} on other hosts over NATS)`,
  )
  if (h.workers.length === 0) out.push("none registered")
  else
    out.push(
      ...table(
        [
          "NAME",
          "INSTANCE",
          "HOST",
          ">PID",
          "STATE",
          ">SLOTS",
          ">IN FLIGHT",
          ">STUCK",
          ">SERVED",
          ">RESTARTS",
          ">P50",
          ">P90",
          ">P99",
          ">MAX",
          ">ROUTES",
        ],
        h.workers.map((w) => [
          clean(w.name),
          clean(w.instance),
          clean(w.host || h.host),
          n(w.pid),
          w.connected ? "connected" : "joining",
          `${n(w.slotsInUse)}/${n(w.slots)}`,
          n(w.inFlight),
          n(w.stuck),
          n(w.served),
          n(w.restarts),
          us(n(w.latency.p50Us), n(w.latency.count)),
          us(n(w.latency.p90Us), n(w.latency.count)),
          us(n(w.latency.p99Us), n(w.latency.count)),
          us(n(w.latency.maxUs), n(w.latency.count)),
          n(w.routes.length),
        ]),
      ),
    )

  out.push("", "ROUTES")
  if (h.routes.length === 0) out.push("none")
  else {
    const key = (r: HubHealth["routes"][number]) => {
      const route = String(r.route)
      const sp = route.indexOf(" ")
      return `${r.owner} ${route.slice(sp + 1)} ${route.slice(0, sp)}`
    }
    const sorted = [...h.routes].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
    out.push(
      ...table(
        ["OWNER", "ROUTE", ">WORKERS"],
        sorted.map((r) => [clean(r.owner), clean(r.route), n(r.workers)]),
      ),
    )
  }

  const names = new Map<number, string>(h.workers.map((w) => [n(w.pid), clean(w.name)]))
  names.set(n(h.pid), "the hub")
  const who = (v: unknown) => {
    const pid = n(v)
    return names.has(pid) ? `${pid} (${names.get(pid)})` : String(pid)
  }
  const t = h.topics[0]
  if (!t) out.push("", "EVENTS TOPIC: none open")
  else {
    const extra = `${t.abandoned ? ` · ${n(t.abandoned)} abandoned` : ""}${t.fenced ? ` · ${n(t.fenced)} fenced` : ""}`
    out.push("", `EVENTS TOPIC ${clean(t.name)} · ring ${bytes(n(t.capacity))} · ${bytes(n(t.tail))} published${extra}`)
    out.push(
      ...table(
        ["SUBSCRIBER", "FILTER", ">QUEUE", ">RECEIVED", ">LAGGED", ">BEHIND", ""],
        t.subscribers.map((s) => [
          who(s.pid),
          clean(s.filter),
          n(s.queue),
          n(s.received),
          n(s.lagged),
          bytes(n(s.behind)),
          s.parked ? "parked" : "",
        ]),
      ),
    )
    if (t.publishers.length > 0)
      out.push(
        ...table(
          ["PUBLISHER", ">PUBLISHED"],
          t.publishers.map((p) => [who(p.pid), n(p.published)]),
        ),
      )
    out.push("(lagged: events a subscriber lost; behind: ring bytes it has not read yet)")
  }

  out.push("", "LEASES: the hub holds no lease contests (leases live in slotbus/leases contests of their own)")

  if (h.nats) out.push("", "ACROSS HOSTS (NATS)", ...renderSections(h.nats).slice(1))

  out.push("", "RECENT EVICTIONS")
  if (h.evicted.length === 0) out.push("none since the hub started")
  else
    out.push(
      ...table(
        ["AT", "NAME", "INSTANCE", ">PID", "REASON"],
        h.evicted.map((e) => [
          new Date(e.at).toLocaleTimeString("en-GB"),
          clean(e.name),
          clean(e.instance),
          n(e.pid),
          clean(e.reason),
        ]),
      ),
    )
  return `${out.map((l) => (l.length > width ? l.slice(0, width) : l)).join("\n")}\n`
}
