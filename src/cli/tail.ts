// `slotbus tail <topic> [type] [key=value]…`: joins a topic of this host as one more subscriber and prints its events
// as they pass, one line each (or NDJSON with --json). A subscriber never holds a publisher back (docs/PROTOCOL.md
// §8.4): a tail that falls behind is pushed past what it missed, and says how many events it lost.
import { NotFoundError, SlotBusError } from "../errors.ts"
import { Topic, type TopicEvent, type TopicFilter } from "../events/index.ts"
import { checkNumber, printable, printableJson } from "../kit/index.ts"
import { CliProblem, help, parse, runCommand, untilStopped } from "./prelude.ts"
import { type OutputSink, stdoutSink } from "../runtime/index.ts"

const USAGE = `usage: slotbus tail <topic> [type] [key=value]... [--json] [--queue n] [--from oldest]

Prints the events of a topic of this host (its own user's) as they pass, one line each: the time it read
the event, the event's id and type, its routing keys, and the data as text when it is printable, else
its length and first bytes in hex; control characters in any of them are escaped (ESC as \\x1b). The
filter is the topic's (docs/PROTOCOL.md §8.5): type exact ("job.done"), a prefix ("session.*") or any ("*",
the default), and up to 4 routing keys that must be equal. The tail waits for its output (a pager, a slow
link) and never slows a publisher: when it falls behind, the events it missed are skipped and counted on
stderr. Ctrl-C or SIGTERM leaves the topic.

  --json          one JSON object per event: time, id, type, routing, and text or base64 data
  --queue n       events that may wait for this tail before the oldest are counted as missed (default 4096)
  --from oldest   start with the oldest event still in the ring instead of the next one`

const OPTIONS = {
  json: { type: "boolean" },
  queue: { type: "string" },
  from: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const

const usage = (problem: string) => new CliProblem(problem, 2, USAGE)
/** A problem past the arguments (the topic, the filter): exit 1. */
const failed = (problem: string) => new CliProblem(problem, 1)

/** Runs `slotbus tail …`; resolves with the exit code. */
export function runTailCli(argv: string[]): Promise<number> {
  return runCommand("tail", () => tail(argv))
}

async function tail(argv: string[]): Promise<number> {
  const { values, positionals } = parse({ args: argv, allowPositionals: true, options: OPTIONS }, usage)
  if (values.help) return help(USAGE)
  const [name, ...rest] = positionals
  if (!name) throw usage("name the topic")
  const filter: TopicFilter = {}
  for (const arg of rest) {
    const eq = arg.indexOf("=")
    if (eq > 0) (filter.routing ??= {})[arg.slice(0, eq)] = arg.slice(eq + 1)
    else if (filter.type === undefined) filter.type = arg
    else throw usage(`two types (${filter.type}, ${arg}): a filter has one; routing keys are key=value`)
  }
  const queue =
    values.queue === undefined
      ? 4096
      : checkNumber(/^\d+$/.test(values.queue) ? Number(values.queue) : values.queue, {
          what: "--queue",
          min: 1,
          max: 1 << 20,
          error: (p) => usage(p.message),
        })
  if (values.from !== undefined && values.from !== "oldest") throw usage('--from takes "oldest"')

  let topic: Topic
  try {
    topic = await Topic.open(name, { create: "never" })
  } catch (e) {
    if (e instanceof NotFoundError)
      throw failed(
        `no topic named "${name}" is open on this host (as this user); tail joins a topic, it never makes one`,
      )
    if (e instanceof SlotBusError || e instanceof TypeError || e instanceof RangeError) throw failed(e.message)
    throw e
  }
  const { stopped, off } = untilStopped("tail")
  try {
    const sub = topic.subscribe(filter, { queue, idle: "park", from: values.from === "oldest" ? "oldest" : "now" })
    process.stderr.write(`slotbus tail: following "${name}"${describe(filter)}\n`)
    let lagged = 0
    const out = stdoutSink()
    // A stop closes the subscription (a pending receive() resolves undefined) and lets go of a pending write: one
    // handler for the whole run, as a race against `stopped` per event would keep a reaction per event until the end.
    let letGo: ((ok: boolean) => void) | null = null
    let stop = false
    void stopped.then(() => {
      stop = true
      sub.close()
      letGo?.(false)
    })
    for (;;) {
      const ev = await sub.receive()
      if (ev === undefined || stop) break
      if (sub.lagged > lagged) {
        process.stderr.write(`slotbus tail: fell behind: ${sub.lagged - lagged} events missed\n`)
        lagged = sub.lagged
      }
      const took = written(out, values.json ? jsonLine(ev) : textLine(ev))
      if (took === true) continue
      const ok = await new Promise<boolean>((r) => {
        letGo = r
        void took.then(r)
      })
      letGo = null
      if (!ok) break
    }
    await sub.close()
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) throw failed(e.message)
    throw e
  } finally {
    off()
    await topic.close()
  }
  return 0
}

/**
 * Writes a line and waits until stdout took it: a reader that waits (`| less`, a slow ssh) holds the tail here, not
 * in memory, while its queue fills and the ring skips it, counted once it reads again. true when it took it at
 * once, else a promise of whether it did (false: the reader left, EPIPE).
 */
function written(out: OutputSink, line: string): true | Promise<boolean> {
  let flushed: number | Promise<number>
  try {
    out.write(line)
    flushed = out.flush()
  } catch {
    return Promise.resolve(false)
  }
  if (typeof flushed === "number") return true
  return flushed.then(
    () => true,
    () => false,
  )
}

function describe(f: TopicFilter): string {
  const parts = [
    f.type && f.type !== "*" ? `type ${f.type}` : "",
    ...Object.entries(f.routing ?? {}).map(([k, v]) => `${k}=${v}`),
  ]
  const s = parts.filter(Boolean).join(", ")
  return s ? ` (${s})` : ""
}

const strict = new TextDecoder("utf-8", { fatal: true })

/** The data as text when it is UTF-8 without control characters other than tab and newline; else null. */
function asText(data: Uint8Array): string | null {
  try {
    const s = strict.decode(data)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
    return /[\u0000-\u0008\u000b-\u001f\u007f]/.test(s) ? null : s
  } catch {
    return null
  }
}

function hexSummary(data: Uint8Array): string {
  const head = Buffer.from(data.subarray(0, 16)).toString("hex")
  return `<${data.length} bytes: ${head}${data.length > 16 ? "…" : ""}>`
}

function clock(): string {
  return new Date().toISOString().slice(11, 23)
}

// Types, routing and data come from any publisher, another host's through a bridge included: escaped, as ls -b does.
function textLine(ev: TopicEvent): string {
  const keys = Object.entries(ev.routing).map(([k, v]) => ` ${printable(k)}=${printable(v)}`)
  const text = ev.data.length === 0 ? "" : asText(ev.data)
  const payload = text === null ? hexSummary(ev.data) : printable(text)
  return `${clock()} #${ev.id} ${printable(ev.type)}${keys.join("")}${payload ? ` ${payload}` : ""}\n`
}

// JSON as JSON.stringify writes it, with what it leaves raw that a terminal acts on (DEL, C1, bidi) as \u escapes.
function jsonLine(ev: TopicEvent): string {
  const text = asText(ev.data)
  const data = text === null ? { base64: Buffer.from(ev.data).toString("base64") } : { text }
  const line = printableJson({
    time: new Date().toISOString(),
    id: ev.id,
    type: ev.type,
    routing: ev.routing,
    bytes: ev.data.length,
    ...data,
  })
  return `${line}\n`
}
