// The work of `slotbus bench node`: a report page rendered by a hand-written template loop (no template engine is
// installed), the same in every variant. A report is seeded by its id: ROWS rows, each with SAMPLES readings summed,
// averaged and spread (a fixed amount of arithmetic: no clock is read), written as an HTML table row with its label
// escaped. ~2.5 ms of CPU under Node 26 on the 2-vCPU Xeon VM it was calibrated on (WORK sets it), ~50 KB of HTML.

/** Reports have ids 0 … REPORT_IDS − 1: the load asks for them in turn (bench/lib/ids.lua). */
export const REPORT_IDS = 64
const ROWS = 370
const SAMPLES = 24
/** Passes over each row's readings: the knob of the CPU cost. */
const WORK = 13

/** mulberry32: a small seeded generator, so every process renders the same report for an id. */
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

const WORDS = "north south <east> west 'store' \"depot\" & hub line dock bay yard gate floor rack bin".split(" ")
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)

/** The report page of `id`: ~50 KB of HTML, the same bytes in every process. */
export function renderReport(id: number): string {
  const rand = seeded(id * 7919 + 1)
  const readings = new Float64Array(SAMPLES)
  let html = `<!doctype html><html><head><meta charset="utf-8"><title>Report ${id}</title></head><body>`
  html += `<h1>Stock report #${id}</h1><table><thead><tr><th>#</th><th>site</th><th>mean</th><th>spread</th>`
  html += "<th>min</th><th>max</th><th>trend</th></tr></thead><tbody>"
  let total = 0
  for (let row = 0; row < ROWS; row++) {
    for (let i = 0; i < SAMPLES; i++) readings[i] = rand() * 1000
    let mean = 0
    let spread = 0
    let trend = 0
    for (let pass = 0; pass < WORK; pass++) {
      let sum = 0
      for (let i = 0; i < SAMPLES; i++) sum += readings[i]!
      mean = sum / SAMPLES
      let sq = 0
      for (let i = 0; i < SAMPLES; i++) sq += (readings[i]! - mean) ** 2
      spread = Math.sqrt(sq / SAMPLES)
      trend = 0
      for (let i = 1; i < SAMPLES; i++) trend += Math.tanh((readings[i]! - readings[i - 1]!) / (spread + 1))
      for (let i = 0; i < SAMPLES; i++) readings[i] = readings[i]! * 0.999 + mean * 0.001
    }
    let min = readings[0]!
    let max = min
    for (let i = 1; i < SAMPLES; i++) (min = Math.min(min, readings[i]!)), (max = Math.max(max, readings[i]!))
    total += mean
    const label = `${WORDS[row % WORDS.length]} ${WORDS[(row * 7 + id) % WORDS.length]} ${row}`
    html += `<tr class="${row % 2 ? "odd" : "even"}"><td>${row + 1}</td><td>${escapeHtml(label)}</td>`
    html += `<td>${mean.toFixed(2)}</td><td>${spread.toFixed(3)}</td><td>${min.toFixed(1)}</td>`
    html += `<td>${max.toFixed(1)}</td><td>${trend >= 0 ? "▲" : "▼"} ${Math.abs(trend).toFixed(4)}</td></tr>\n`
  }
  return `${html}</tbody></table><p>Total of means: ${total.toFixed(2)}</p></body></html>\n`
}
