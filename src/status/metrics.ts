// GET /metrics: the metric families of serveStatus's sources (and the HTTP hub's buses) in Prometheus's text format,
// version 0.0.4 — what `promtool check metrics` and a Prometheus server's scrape read. Families of one name from
// several sources (two buses) are written as one: a HELP and a TYPE line, then every source's samples. Each place
// that serves it computes the text once for every scrape that comes while it is computed and for a second after
// (sharedScrape), with its UTF-8 bytes and, once a scrape asks for it, its gzipped copy: a client scraping in a loop
// gets the same bytes, not the front's CPU, and Prometheus (Accept-Encoding: gzip) gets a copy ~30 times smaller.
import type { IncomingMessage, ServerResponse } from "node:http"
import { gzipSync } from "node:zlib"
import { checkNumber, hasMetrics, MAX_TIMER_MS, METRICS, type MetricFamily, type MetricLabels } from "../kit/index.ts"

export const METRICS_HEADERS = {
  "content-type": "text/plain; version=0.0.4; charset=utf-8",
  "cache-control": "no-store",
  vary: "accept-encoding",
}
const GZIP_HEADERS = { ...METRICS_HEADERS, "content-encoding": "gzip" }
const encoder = new TextEncoder()

const escapeHelp = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const escapeLabel = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
/** A value as Prometheus reads it; a fraction to 15 significant digits, the float noise of a sum left out (0.01 +
 * 0.05 is 0.060000000000000005, written 0.06). */
function num(v: number): string {
  if (v === Infinity) return "+Inf"
  if (v === -Infinity) return "-Inf"
  if (Number.isNaN(v)) return "NaN"
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(15)))
}

function labelText(labels: MetricLabels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`)
  return pairs.length ? `{${pairs.join(",")}}` : ""
}

/** The families of `sources` that can be measured (a SlotBus, Topic, Contest, StdioBus), each source once; one that throws (closed) is left out. */
export function familiesOf(sources: readonly unknown[]): MetricFamily[] {
  return [...new Set(sources)].flatMap((s) => {
    try {
      return hasMetrics(s) ? s[METRICS]() : []
    } catch {
      return []
    }
  })
}

/** Families in Prometheus's text format; those of one name are merged under one HELP and TYPE. */
export function renderMetrics(families: readonly MetricFamily[]): string {
  const byName = new Map<string, MetricFamily>()
  for (const f of families) {
    const had = byName.get(f.name)
    if (had) had.samples.push(...f.samples)
    else byName.set(f.name, { ...f, samples: [...f.samples] })
  }
  const out: string[] = []
  for (const f of byName.values()) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) {
      if (!("histogram" in s)) {
        out.push(`${f.name}${labelText(s.labels)} ${num(s.value)}`)
        continue
      }
      const h = s.histogram
      h.bounds.forEach((b, i) => out.push(`${f.name}_bucket${labelText(s.labels, ["le", num(b)])} ${h.cumulative[i]}`))
      out.push(`${f.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${h.count}`)
      out.push(`${f.name}_sum${labelText(s.labels)} ${num(h.sum)}`, `${f.name}_count${labelText(s.labels)} ${h.count}`)
    }
  }
  return out.length ? `${out.join("\n")}\n` : ""
}

/** How long a computed text answers scrapes, in ms, unless told (Prometheus scrapes every 15–60 s). */
export const METRICS_MAX_AGE_MS = 1000

/** `maxAgeMs` as an option of `where`, checked: 0 (share only a computation under way) to MAX_TIMER_MS. */
export const metricsMaxAge = (maxAgeMs: unknown, what: string, where: string): number =>
  checkNumber(maxAgeMs, { what, where, max: MAX_TIMER_MS, dflt: METRICS_MAX_AGE_MS })

/** A computed text as it is sent: its UTF-8 bytes, and its gzipped bytes, made once, by the first scrape that takes gzip. */
export class ScrapeText {
  readonly bytes: Uint8Array
  #gzipped: Uint8Array | null = null
  constructor(text: string) {
    this.bytes = encoder.encode(text) // the string itself is not kept: nothing sends it
  }
  get gzipped(): Uint8Array {
    this.#gzipped ??= gzipSync(this.bytes)
    return this.#gzipped
  }
}

/**
 * `compute`, shared: while it runs every caller gets its text, and that text answers for `maxAgeMs` after the run
 * began. A run that fails fails for those who waited on it and is not kept: the next caller runs it again.
 */
export function sharedScrape(compute: () => Promise<string>, maxAgeMs: number): () => Promise<ScrapeText> {
  let running: Promise<ScrapeText> | null = null
  let kept: { scrape: ScrapeText; at: number } | null = null
  return () => {
    if (running !== null) return running
    const at = performance.now()
    if (kept !== null && at - kept.at < maxAgeMs) return Promise.resolve(kept.scrape)
    running = (async () => new ScrapeText(await compute()))()
      .then((scrape) => {
        kept = { scrape, at }
        return scrape
      })
      .finally(() => {
        running = null
      })
    return running
  }
}

/**
 * Whether an Accept-Encoding header takes gzip (RFC 9110 §12.5.3): `gzip` or `x-gzip` named with a q above 0, or else
 * `*` with one. A q of 0 (or one that is not a number) means no.
 */
export function acceptsGzip(header: string | null): boolean {
  if (header === null) return false
  let named: boolean | null = null
  let star = false
  for (const part of header.split(",")) {
    const [coding = "", ...params] = part.split(";")
    const name = coding.trim().toLowerCase()
    if (name !== "gzip" && name !== "x-gzip" && name !== "*") continue
    const q = params.map((p) => p.split("=")).find(([k]) => k?.trim().toLowerCase() === "q")?.[1]
    const yes = q === undefined || Number(q.trim()) > 0
    if (name === "*") star ||= yes
    else named = (named ?? false) || yes
  }
  return named ?? star
}

/**
 * The answer to a GET or HEAD of /metrics: the shared text's bytes, gzipped when the scrape takes gzip (with the
 * headers a GET would have: a HEAD computes nothing).
 */
export async function metricsAnswer(req: Request, scrape: () => Promise<ScrapeText>): Promise<Response> {
  const gzip = acceptsGzip(req.headers.get("accept-encoding"))
  const headers = gzip ? GZIP_HEADERS : METRICS_HEADERS
  if (req.method === "HEAD") return new Response(null, { headers })
  const s = await scrape()
  return new Response(gzip ? s.gzipped : s.bytes, { headers })
}

/**
 * The same answer written to node:http's `res` (Express's too): 405 with Allow to a method other than GET and HEAD,
 * and a failure to compute the text a 500 `{ error: "internal", message }` (the connection cut if the head is out by
 * then). Settles once the answer is handed to the socket or the client is gone; it never rejects.
 */
export async function metricsNodeAnswer(
  req: IncomingMessage,
  res: ServerResponse,
  scrape: () => Promise<ScrapeText>,
): Promise<void> {
  try {
    if (req.method !== "GET" && req.method !== "HEAD")
      return await written(res, 405, METHOD_NOT_ALLOWED, { allow: "GET, HEAD" })
    const gzip = acceptsGzip(req.headers["accept-encoding"] ?? null)
    const headers = gzip ? GZIP_HEADERS : METRICS_HEADERS
    if (req.method === "HEAD") return await written(res, 200, null, headers)
    const s = await scrape()
    await written(res, 200, gzip ? s.gzipped : s.bytes, headers)
  } catch (e) {
    if (res.headersSent) return void res.destroy()
    const message = String((e as Error)?.message ?? e)
    await written(res, 500, encoder.encode(JSON.stringify({ error: "internal", message })), JSON_HEADERS).catch(() => {
      res.destroy()
    })
  }
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" }
const METHOD_NOT_ALLOWED = encoder.encode(
  JSON.stringify({ error: "method-not-allowed", message: "/metrics takes GET, HEAD" }),
)

/**
 * `body` (null: none, a HEAD's) written with `status` and `headers`: settled once it is out or the client is gone,
 * at once when it was gone before (a destroyed response calls neither end's callback nor, again, "close").
 */
function written(
  res: ServerResponse,
  status: number,
  body: Uint8Array | null,
  headers: Record<string, string>,
): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) return resolve()
    const done = () => {
      res.off("close", done)
      resolve()
    }
    res.once("close", done)
    res.writeHead(status, body === null ? headers : { ...headers, "content-length": String(body.length) })
    if (body === null) res.end(done)
    else res.end(body, done)
  })
}
