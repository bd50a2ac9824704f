// A status report (serveStatus' /status.json, or a hub's /health made into one) as terminal lines, for
// `slotbus status`. Everything in a section may come from another process (a worker's host label, a subscriber's
// filter): a string holding a terminal escape must not repaint the user's screen.
import type { StatusPart, StatusReport, StatusSection, StatusValue } from "../status/index.ts"
import { table } from "./table.ts"

const FACTS_WIDTH = 100

// C0, DEL, C1 and bidi controls (kit/checks/escape.ts's set)
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
export const clean = (s: unknown) => String(s).replace(CONTROLS, "?")
const show = (v: StatusValue) => (v === true ? "yes" : v === false ? "no" : v === null ? "-" : clean(v))
/** A value printed as a number only if it is one (NaN otherwise): the server sent it, it may be anything. */
const numberOf = (v: unknown): number => (typeof v === "number" ? v : Number.NaN)

function tableLines(names: string[], rows: StatusValue[][]): string[] {
  const cells = [names.map((c) => clean(c).toUpperCase()), ...rows.map((r) => r.map(show))]
  const numeric = names.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number" || r[i] === null))
  return table(cells, numeric).map((l) => l.trimEnd())
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
    else out.push(...tableLines(t.columns, t.rows).map((l) => `${indent}  ${l}`))
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
