// What a live status view shows of one thing (a bus, a topic, a contest, a stdio bus): the shape every room
// fills and serveStatus (src/status) serves, pages and prints without knowing which room it came from.

/** One value of a fact or a table cell: shown as it is (numbers as numbers, true/false as yes/no). */
export type StatusValue = string | number | boolean | null

export interface StatusTable {
  title: string
  columns: string[]
  rows: StatusValue[][]
}

/** A part of a section: its facts (label, value) and its tables. */
export interface StatusPart {
  facts: [label: string, value: StatusValue][]
  tables: StatusTable[]
}

/** What one thing shows: its own part, and what it knows across hosts when it was given a `remote` transport. */
export interface StatusSection extends StatusPart {
  /** "bus", "stdio", "topic", "contest", or the caller's own. */
  kind: string
  /** Its name as the caller gave it. */
  name: string
  /** Its side across hosts: the transport's name ("nats"), its connection, workers of other hosts, bridges, streams, leases in the cluster. */
  remote?: StatusPart & { transport: string }
  /** Things to look at now (a pool that gave up, a lost connection, events lost across hosts). */
  warnings: string[]
}

/** The method a thing serveStatus can show has: `[STATUS]()`, its section now. */
export const STATUS: unique symbol = Symbol.for("slotbus.status") as never

export interface StatusSource {
  [STATUS](): StatusSection | Promise<StatusSection>
}

/** A section with nothing in it yet, to fill. */
export function section(kind: string, name: string): StatusSection {
  return { kind, name, facts: [], tables: [], warnings: [] }
}

/** Rounds a duration in ms to what a person reads: "850 ms", "12.5 s", "3 min", "2 h 5 min". */
export function ago(ms: number): string {
  if (!(ms >= 0)) return "-"
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min`
  return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`
}

/** A section that takes longer than this to read (a remote server that does not answer) shows a warning instead. */
const SECTION_TIMEOUT_MS = 2000

/** Reads one section; one that fails or hangs becomes a section saying so (kind "unreadable"), never an error. */
export async function readSection(
  get: () => StatusSection | Promise<StatusSection>,
  label: string,
): Promise<StatusSection> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${SECTION_TIMEOUT_MS} ms`)), SECTION_TIMEOUT_MS)
    })
    return sectionOf(await Promise.race([get(), late]), label)
  } catch (e) {
    const s = section("unreadable", label)
    s.warnings.push(`cannot be read: ${(e as Error)?.message ?? String(e)}`)
    return s
  } finally {
    clearTimeout(timer)
  }
}

/**
 * `v` as a section every view can draw: what a source's own function gave is not checked by any type at run time
 * (`() => undefined`, a section without `tables`). One that is no object is a section saying so (kind
 * "unreadable"); a missing or malformed list is empty, a cell that is no value its text.
 */
export function sectionOf(v: unknown, label: string): StatusSection {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    const s = section("unreadable", label)
    const what = v === null ? "null" : Array.isArray(v) ? "an array" : typeof v
    s.warnings.push(`cannot be read: it gave ${what}, not a section ({ kind, name, facts, tables, warnings })`)
    return s
  }
  const o = v as Record<string, unknown>
  const warnings = Array.isArray(o.warnings) ? o.warnings.map(String) : []
  const out: StatusSection = {
    ...o,
    kind: String(o.kind ?? "unknown"),
    name: String(o.name ?? label),
    ...partOf(o),
    warnings,
  }
  if (o.remote !== undefined) {
    const r = typeof o.remote === "object" && o.remote !== null ? (o.remote as Record<string, unknown>) : {}
    out.remote = { ...partOf(r), transport: String(r.transport ?? "") }
  }
  return out
}

const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const cellOf = (v: unknown): StatusValue =>
  v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? v : String(v)

function partOf(p: Record<string, unknown>): StatusPart {
  return {
    facts: listOf(p.facts)
      .filter(Array.isArray)
      .map((f) => [String(f[0]), cellOf(f[1])]),
    tables: listOf(p.tables)
      .filter((t): t is Record<string, unknown> => typeof t === "object" && t !== null)
      .map((t) => ({
        title: String(t.title ?? ""),
        columns: listOf(t.columns).map(String),
        rows: listOf(t.rows)
          .filter(Array.isArray)
          .map((r) => r.map(cellOf)),
      })),
  }
}
