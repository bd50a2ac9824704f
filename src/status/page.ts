// The page serveStatus serves at GET /: one self-contained HTML document (inline CSS and JS, nothing fetched from
// elsewhere) that draws GET /stream as it arrives. Every string from a section goes into the DOM as textContent,
// never as markup; the CSP (scripts and styles only by hash) is a second fence, not the first. The HTTP hub serves
// it too, at GET /health/status (its "stream" is then GET /health/stream).
import { createHash } from "node:crypto"

/** How sections look: cards of facts and tables, a NATS block, warnings. */
const SECTIONS_STYLE = `
.sb-card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px 14px; min-width: 0; }
.sb-card h2 { font-size: 15px; margin: 0 0 8px; font-weight: 650; }
.sb-card h2 .kind { color: var(--muted); font-weight: 500; margin-right: 6px; }
.sb-card h3 { font-size: 13px; margin: 12px 0 4px; color: var(--muted); font-weight: 600; }
.sb-facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 2px 18px; margin: 0; }
.sb-facts div { display: flex; justify-content: space-between; gap: 8px; border-bottom: 1px dotted var(--line); }
.sb-facts dt { color: var(--muted); }
.sb-facts dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600; }
.sb-remote { margin-top: 12px; border-left: 3px solid var(--accent); padding-left: 12px; }
.sb-remote > .label { font-size: 12px; font-weight: 700; color: var(--accent); letter-spacing: .4px; }
.sb-scroll { overflow-x: auto; }
.sb-card table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
.sb-card th, .sb-card td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
.sb-card th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .3px; }
.sb-card td.n, .sb-card th.n { text-align: right; }
.sb-empty { color: var(--muted); font-style: italic; margin: 2px 0; }
.sb-warn { background: var(--warn-bg); color: var(--warn); border-radius: 6px; padding: 4px 10px; margin: 0 0 8px; font-weight: 600; }
`

/**
 * Defines renderSections(container, sections): replaces the container's children with one card per section.
 * (String.raw: its regular expression's backslashes reach the browser as written.)
 */
const SECTIONS_SCRIPT = String.raw`
function sbEl(tag, cls, text) {
  const e = document.createElement(tag)
  if (cls) e.className = cls
  if (text !== undefined) e.textContent = text
  return e
}
// Control characters (a terminal escape in a host label, say) shown as \xNN instead of as boxes or nothing.
function sbVisible(s) {
  return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const h = c.charCodeAt(0).toString(16)
    return h.length <= 2 ? "\\x" + ("0" + h).slice(-2) : "\\u" + ("000" + h).slice(-4)
  })
}
function sbShow(v) { return v === true ? "yes" : v === false ? "no" : v === null ? "-" : sbVisible(v) }
function sbPart(parent, part) {
  if (part.facts.length) {
    const dl = sbEl("dl", "sb-facts")
    for (const [k, v] of part.facts) {
      const d = sbEl("div")
      d.append(sbEl("dt", "", sbVisible(k)), sbEl("dd", "", sbShow(v)))
      dl.append(d)
    }
    parent.append(dl)
  }
  for (const t of part.tables) {
    parent.append(sbEl("h3", "", sbVisible(t.title) + " (" + t.rows.length + ")"))
    if (!t.rows.length) { parent.append(sbEl("p", "sb-empty", "none")); continue }
    const table = sbEl("table"), head = sbEl("tr")
    const numeric = t.columns.map((_, i) => t.rows.every((r) => typeof r[i] === "number" || r[i] === null))
    t.columns.forEach((c, i) => head.append(sbEl("th", numeric[i] ? "n" : "", sbVisible(c))))
    table.append(head)
    for (const r of t.rows) {
      const tr = sbEl("tr")
      r.forEach((v, i) => tr.append(sbEl("td", numeric[i] ? "n" : "", sbShow(v))))
      table.append(tr)
    }
    const wrap = sbEl("div", "sb-scroll")
    wrap.append(table)
    parent.append(wrap)
  }
}
function renderSections(container, sections) {
  const cards = sections.map((s) => {
    const card = sbEl("section", "sb-card")
    const h = sbEl("h2")
    h.append(sbEl("span", "kind", sbVisible(s.kind)), document.createTextNode(sbVisible(s.name)))
    card.append(h)
    for (const w of s.warnings) card.append(sbEl("p", "sb-warn", sbVisible(w)))
    sbPart(card, s)
    if (s.remote) {
      const n = sbEl("div", "sb-remote")
      n.append(sbEl("div", "label", "ACROSS HOSTS (" + sbVisible(String(s.remote.transport)).toUpperCase() + ")"))
      sbPart(n, s.remote)
      card.append(n)
    }
    return card
  })
  container.replaceChildren(...cards)
}
`

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f4f6f9; --card: #fff; --ink: #1b2330; --muted: #5d6b7e; --line: #dfe4ec; --head: #18212f; --accent: #2f6fde;
  --ok: #137a3f; --ok-bg: #e3f5ea; --warn: #8a5a00; --warn-bg: #fff3d6;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #11161e; --card: #19202b; --ink: #e4e9f0; --muted: #93a1b5; --line: #2c3644; --head: #0b0f15; --accent: #7aa7ff;
    --ok: #6fd39a; --ok-bg: #173524; --warn: #f2c46b; --warn-bg: #3a2e12; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { background: var(--head); color: #fff; padding: 12px 20px; display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 18px; }
header h1 { font-size: 18px; margin: 0; font-weight: 650; }
header .where { color: #b8c4d6; font-size: 13px; }
.pill { margin-left: auto; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.pill.live { background: var(--ok-bg); color: var(--ok); }
.pill.down { background: var(--warn-bg); color: var(--warn); }
main { padding: 16px 20px; display: grid; gap: 16px; max-width: 1500px; }
${SECTIONS_STYLE}`

const SCRIPT = `${SECTIONS_SCRIPT}
const title = document.getElementById("title"), where = document.getElementById("where")
const pill = document.getElementById("pill"), main = document.querySelector("main")
function ago(ms) { return ms < 60000 ? Math.round(ms / 1000) + " s" : ms < 3600000 ? Math.floor(ms / 60000) + " min" : Math.floor(ms / 3600000) + " h " + Math.floor(ms % 3600000 / 60000) + " min" }
const es = new EventSource("stream")
es.addEventListener("status", (e) => {
  const r = JSON.parse(e.data)
  title.textContent = sbVisible(r.title)
  document.title = "slotbus status: " + sbVisible(r.title)
  where.textContent = sbVisible(r.host) + " · pid " + r.pid + " · up " + ago(r.uptimeMs) + " · " + r.at.slice(11, 19) + " UTC"
  pill.textContent = "live"
  pill.className = "pill live"
  renderSections(main, r.sections)
})
es.onerror = () => { pill.textContent = "reconnecting"; pill.className = "pill down" }
`

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>slotbus status</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body><header><h1 id="title">slotbus status</h1><span class="where" id="where">connecting…</span><span class="pill down" id="pill">connecting</span></header>
<main></main><script>${SCRIPT}</script></body></html>`

const sha256 = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`

export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src data:", // the empty icon: no request for /favicon.ico
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ")

/** The headers the page goes out with. */
export const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy": STATUS_PAGE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
}
