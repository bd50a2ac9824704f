// `slotbus tail <topic> [type] [key=value]…`: joins a topic of this host as one more subscriber and prints its events
// as they pass, one line each (or NDJSON with --json). A subscriber never holds a publisher back (docs/PROTOCOL.md
// §8.4): a tail that falls behind is pushed past what it missed, and says how many events it lost.
import { parseArgs } from "node:util"
import { NotFoundError, SlotBusError } from "../errors.ts"
import { printable } from "../kit/index.ts"
import type { TopicFilter } from "./codec.ts"
import type { TopicEvent } from "./subscription.ts"
import { Topic } from "./topic.ts"

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

/** Runs `slotbus tail …`; resolves with the exit code. */
export async function runTailCli(argv: string[]): Promise<number> {
  let values: { json?: boolean; queue?: string; from?: string; help?: boolean }
  let positionals: string[]
  try {
    ;({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: "boolean" },
        queue: { type: "string" },
        from: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }))
  } catch (e) {
    return usage((e as Error).message)
  }
  if (values.help) return (void process.stdout.write(`${USAGE}\n`), 0)
  const [name, ...rest] = positionals
  if (!name) return usage("name the topic")
  const filter: TopicFilter = {}
  for (const arg of rest) {
    const eq = arg.indexOf("=")
    if (eq > 0) (filter.routing ??= {})[arg.slice(0, eq)] = arg.slice(eq + 1)
    else if (filter.type === undefined) filter.type = arg
    else return usage(`two types (${filter.type}, ${arg}): a filter has one; routing keys are key=value`)
  }
  const queue = values.queue === undefined ? 4096 : Number(values.queue)
  if (values.from !== undefined && values.from !== "oldest") return usage('--from takes "oldest"')

  let topic: Topic
  try {
    topic = await Topic.open(name, { create: "never" })
  } catch (e) {
    if (e instanceof NotFoundError)
      return fail(
        `slotbus tail: no topic named "${name}" is open on this host (as this user); tail joins a topic, it never makes one`,
      )
    if (e instanceof SlotBusError || e instanceof TypeError || e instanceof RangeError)
      return fail(`slotbus tail: ${e.message}`)
    throw e
  }
  const stop = Promise.withResolvers<void>()
  const leave = () => stop.resolve()
  process.once("SIGINT", leave)
  process.once("SIGTERM", leave)
  try {
    const sub = topic.subscribe(filter, { queue, idle: "park", from: values.from === "oldest" ? "oldest" : "now" })
    process.stderr.write(`slotbus tail: following "${name}"${describe(filter)}\n`)
    let lagged = 0
    const out = Bun.stdout.writer()
    const read = (async () => {
      for (;;) {
        const ev = await Promise.race([sub.receive(), stop.promise.then(() => undefined)])
        if (ev === undefined) return
        if (sub.lagged > lagged) {
          process.stderr.write(`slotbus tail: fell behind: ${sub.lagged - lagged} events missed\n`)
          lagged = sub.lagged
        }
        if (!(await written(out, values.json ? jsonLine(ev) : textLine(ev), stop.promise))) return
      }
    })()
    await read
    await sub.close()
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) return fail(`slotbus tail: ${e.message}`)
    throw e
  } finally {
    process.off("SIGINT", leave)
    process.off("SIGTERM", leave)
    await topic.close()
  }
  return 0
}

/**
 * Writes a line and waits until stdout took it: a reader that waits (`| less`, a slow ssh) holds the tail here, not
 * in memory, while its queue fills and the ring skips it, counted once it reads again. false: the reader left
 * (EPIPE) or the tail was stopped.
 */
async function written(out: Bun.FileSink, line: string, stop: Promise<void>): Promise<boolean> {
  let flushed: number | Promise<number>
  try {
    out.write(line)
    flushed = out.flush()
  } catch {
    return false
  }
  if (typeof flushed === "number") return true
  const took = flushed.then(
    () => true,
    () => false,
  )
  return (await Promise.race([took, stop])) === true
}

function usage(problem: string): number {
  process.stderr.write(`slotbus tail: ${problem}\n\n${USAGE}\n`)
  return 2
}

function fail(message: string): number {
  process.stderr.write(`${message}\n`)
  return 1
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

// What JSON.stringify leaves raw that a terminal acts on (DEL, C1, bidi overrides), as \u escapes: the same JSON.
const JSON_RAW = /[\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

function jsonLine(ev: TopicEvent): string {
  const text = asText(ev.data)
  const data = text === null ? { base64: Buffer.from(ev.data).toString("base64") } : { text }
  const line = JSON.stringify({
    time: new Date().toISOString(),
    id: ev.id,
    type: ev.type,
    routing: ev.routing,
    bytes: ev.data.length,
    ...data,
  })
  return `${line.replace(JSON_RAW, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}\n`
}
