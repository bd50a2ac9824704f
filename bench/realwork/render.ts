// The work of `slotbus bench realwork`: a shop's render service. A product page is built from a product seeded by
// its id: its catalogue of RANKED products scored by a small model (a FEATURES × FEATURES layer) against it, the top
// 12 kept, then the page written by a template with HTML escaping, reviews in a little markdown and prices
// formatted by hand. A fixed amount of work per id (no clock is read), ~2 ms of CPU on the machine it was calibrated
// on (RANKED sets it), 20–60 KB of HTML varying by id. A thumbnail is THUMB_BYTES streamed in THUMB_CHUNK pieces.
// A cached page is the same page rendered once per process and kept: no work, so what it costs is the carrying.
// Every variant of the bench (threads, worker processes, Bun.serve) runs these same functions.

/** Pages have ids 0 … PAGE_IDS − 1 (larger ids wrap): the load asks for them in turn. */
export const PAGE_IDS = 64
export const THUMB_CHUNK = 64 * 1024
export const THUMB_CHUNKS = 80
export const THUMB_BYTES = THUMB_CHUNK * THUMB_CHUNKS // 5 MiB

/** Products ranked for each page: the knob of its CPU cost (calibrated for ~2 ms on a 2-vCPU Xeon VM). */
const RANKED = 1500
const FEATURES = 24
const TOP = 12

/** mulberry32: a small seeded generator, so every process renders the same page for an id. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const WORDS = (
  "soft sturdy linen oak walnut handmade classic modern compact roomy light warm cool matte glossy quiet " +
  "durable washable recycled organic vintage slim deep wide tall small large bright dark natural bold " +
  "comfy <fits> 'true' \"to\" size & colour; fast delivery, great value: would buy again! stitching seams " +
  "zipper pocket strap handle lid drawer shelf frame cushion fabric leather wool cotton steel glass"
).split(" ")
const NAMES = ["Ada", "Bo", "Chen", "Dana", "Emil", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena", "Mo"]
const CATEGORIES = ["chairs", "tables", "lamps", "rugs", "bags", "shelves", "beds", "sofas"]

interface Item {
  id: number
  name: string
  category: number
  cents: number
  features: Float64Array
}

function words(rand: () => number, n: number): string {
  let s = WORDS[Math.floor(rand() * WORDS.length)]!
  for (let i = 1; i < n; i++) s += ` ${WORDS[Math.floor(rand() * WORDS.length)]!}`
  return s
}

function item(id: number): Item {
  const rand = seeded(id * 7919 + 17)
  const features = new Float64Array(FEATURES)
  for (let i = 0; i < FEATURES; i++) features[i] = rand() * 2 - 1
  return {
    id,
    name: `${words(rand, 2)} ${CATEGORIES[id % CATEGORIES.length]!.slice(0, -1)}`,
    category: id % CATEGORIES.length,
    cents: 999 + Math.floor(rand() * 90_000),
    features,
  }
}

// Made once per process, before any request: the shop's catalogue and its model's weights.
const CATALOGUE: Item[] = Array.from({ length: RANKED }, (_, i) => item(1000 + i))
const WEIGHTS = (() => {
  const rand = seeded(42)
  const w = new Float64Array(FEATURES * FEATURES)
  for (let i = 0; i < w.length; i++) w[i] = (rand() * 2 - 1) / FEATURES
  return w
})()

/** The model's score of `b` for a visitor of `a`: a tanh layer over their features, then a dot product. */
function score(a: Item, b: Item, hidden: Float64Array): number {
  for (let i = 0; i < FEATURES; i++) {
    let h = 0
    for (let j = 0; j < FEATURES; j++) h += WEIGHTS[i * FEATURES + j]! * (a.features[j]! - b.features[j]!)
    hidden[i] = Math.tanh(h)
  }
  let s = 0
  for (let i = 0; i < FEATURES; i++) s += hidden[i]! * b.features[i]!
  const sameCategory = a.category === b.category ? 0.5 : 0
  return s + sameCategory - Math.abs(a.cents - b.cents) / 200_000
}

/** The TOP best-scored products of the catalogue for `p`, best first. */
function related(p: Item): Item[] {
  const hidden = new Float64Array(FEATURES)
  const best: { s: number; item: Item }[] = []
  for (const other of CATALOGUE) {
    const s = score(p, other, hidden)
    if (best.length === TOP && s <= best[TOP - 1]!.s) continue
    let at = best.length
    while (at > 0 && best[at - 1]!.s < s) at--
    best.splice(at, 0, { s, item: other })
    if (best.length > TOP) best.pop()
  }
  return best.map((b) => b.item)
}

const ESCAPE = /["&'<>]/

/** The escape-html algorithm: find the first character to escape, then copy the runs between them. */
function escapeHtml(s: string): string {
  const first = ESCAPE.exec(s)
  if (!first) return s
  let out = ""
  let last = 0
  for (let i = first.index; i < s.length; i++) {
    let rep: string
    switch (s.charCodeAt(i)) {
      case 34:
        rep = "&quot;"
        break
      case 38:
        rep = "&amp;"
        break
      case 39:
        rep = "&#39;"
        break
      case 60:
        rep = "&lt;"
        break
      case 62:
        rep = "&gt;"
        break
      default:
        continue
    }
    if (last !== i) out += s.slice(last, i)
    last = i + 1
    out += rep
  }
  return last !== s.length ? out + s.slice(last) : out
}

/** **bold** and *em* of a review, after escaping. */
function markdown(s: string): string {
  return escapeHtml(s)
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/\*([^*]+)\*/g, "<em>$1</em>")
}

function price(cents: number): string {
  const whole = String(Math.floor(cents / 100))
  let grouped = ""
  for (let i = 0; i < whole.length; i++) {
    if (i > 0 && (whole.length - i) % 3 === 0) grouped += ","
    grouped += whole[i]
  }
  return `$${grouped}.${String(cents % 100).padStart(2, "0")}`
}

function stars(n: number): string {
  return "★".repeat(n) + "☆".repeat(5 - n)
}

/** The product page of `id`: 20–60 KB of HTML, the same bytes in every process. */
export function renderPage(id: number): string {
  const n = ((id % PAGE_IDS) + PAGE_IDS) % PAGE_IDS
  const p = item(n)
  const rand = seeded(n * 104_729 + 3)
  const reviews = 36 + Math.floor(((n * 37) % PAGE_IDS) * 1.38)
  let html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(p.name)} | Shop</title>`
  html += `<link rel="stylesheet" href="/static/shop.css"></head><body><header><nav>`
  for (const c of CATEGORIES) html += `<a href="/c/${c}">${escapeHtml(c)}</a>`
  html += `</nav></header><main><article class="product" data-id="${p.id}"><h1>${escapeHtml(p.name)}</h1>`
  html += `<p class="price">${price(p.cents)}</p><section class="description">`
  for (let i = 0; i < 4; i++) html += `<p>${escapeHtml(words(rand, 40 + Math.floor(rand() * 30)))}</p>`
  html += `</section><table class="specs">`
  for (let i = 0; i < 16; i++)
    html += `<tr><th>${escapeHtml(words(rand, 2))}</th><td>${escapeHtml(words(rand, 3))}</td></tr>`
  html += `</table></article><section class="related"><h2>Customers also viewed</h2><ul>`
  for (const r of related(p))
    html += `<li><a href="/p/${r.id}">${escapeHtml(r.name)}</a> <span class="price">${price(r.cents)}</span></li>`
  html += `</ul></section><section class="reviews"><h2>${reviews} reviews</h2>`
  for (let i = 0; i < reviews; i++) {
    const who = NAMES[Math.floor(rand() * NAMES.length)]!
    const text = `${words(rand, 20 + Math.floor(rand() * 40))} **${words(rand, 3)}** *${words(rand, 2)}*`
    html += `<div class="review"><p class="by">${escapeHtml(who)} <span class="stars">${stars(1 + Math.floor(rand() * 5))}</span>`
    html += ` <time>2026-${String(1 + (i % 12)).padStart(2, "0")}-${String(1 + (i % 28)).padStart(2, "0")}</time></p>`
    html += `<p>${markdown(text)}</p></div>`
  }
  return `${html}</section></main><footer>© Shop</footer></body></html>`
}

const cached: string[] = []

/** Page `id` rendered the first time it is asked for and kept (the string is made flat by its first use). */
export function cachedPage(id: number): string {
  return (cached[id % PAGE_IDS] ??= renderPage(id % PAGE_IDS))
}

/** The THUMB_CHUNKS pieces of thumbnail `id`, each a new buffer: a repeated pattern with the id and piece stamped. */
export function* thumbChunks(id: number): Generator<Uint8Array> {
  for (let i = 0; i < THUMB_CHUNKS; i++) yield thumbChunk(id, i)
}

let pattern: Uint8Array | null = null

function thumbChunk(id: number, i: number): Uint8Array {
  pattern ??= Uint8Array.from({ length: THUMB_CHUNK }, (_, k) => (k * 31) & 255)
  const out = pattern.slice()
  new DataView(out.buffer).setUint32(0, id >>> 0)
  new DataView(out.buffer).setUint32(4, i)
  return out
}

/** Thumbnail `id` as a stream, one piece per pull. */
export function thumbStream(id: number): ReadableStream<Uint8Array> {
  const pieces = thumbChunks(id)
  return new ReadableStream<Uint8Array>({
    pull(c) {
      const next = pieces.next()
      if (next.done) c.close()
      else c.enqueue(next.value)
    },
  })
}

const HTML = { "content-type": "text/html; charset=utf-8" }
const JPEG = { "content-type": "image/jpeg" }

/** The answer to `path` (/page/<id>, /cached/<id> or /thumb/<id>) every worker gives, whatever carries it. */
export function answer(path: string): Response {
  const m = /^\/(page|cached|thumb)\/(\d+)$/.exec(path)
  if (!m) return new Response("not found", { status: 404 })
  const id = Number(m[2])
  if (m[1] === "thumb") return new Response(thumbStream(id), { headers: JPEG })
  return new Response(m[1] === "page" ? renderPage(id) : cachedPage(id), { headers: HTML })
}

export { HTML, JPEG }
