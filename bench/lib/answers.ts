// What every variant of `slotbus bench carry`, and `bench node`'s small and page routes, answer whatever carries
// it: /small/<id> a small JSON object, /page/<id> a cached 20–60 KB HTML page (made once per process, then only
// looked up: no work per request, so a request costs its carrying alone). Ids 0 … IDS − 1, asked in turn by wrk
// through bench/lib/ids.lua.

export const IDS = 64
export const ANSWERS = ["small", "page"] as const
export type Answer = (typeof ANSWERS)[number]

export const JSON_TYPE = { "content-type": "application/json;charset=utf-8" }
export const HTML_TYPE = { "content-type": "text/html; charset=utf-8" }

export const small = (id: number) => ({ id, name: `item ${id}`, inStock: id % 3 !== 0 })

function makePage(id: number): string {
  const bytes = 20_000 + Math.round((id * 40_000) / (IDS - 1)) // 20 KB for id 0 … 60 KB for the last
  const end = "</main></body></html>"
  let html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Item ${id}</title></head><body><main>`
  for (let i = 0; ; i++) {
    const part = `<article data-id="${id}-${i}"><h2>Item ${id}, part ${i}</h2><p>${"lorem ipsum dolor sit amet ".repeat(3)}</p></article>\n`
    if (html.length + part.length + end.length > bytes) break
    html += part
  }
  return html + " ".repeat(bytes - html.length - end.length) + end
}

const pages: string[] = []

/** Page `id` (mod IDS), made once per process. */
export function page(id: number): string {
  const n = ((id % IDS) + IDS) % IDS
  return (pages[n] ??= makePage(n))
}

/** Which answer and id a path asks for, or null: /small/<id>, /page/<id>. */
export function route(path: string): { answer: Answer; id: number } | null {
  const m = /^\/(small|page)\/(\d+)$/.exec(path)
  return m ? { answer: m[1] as Answer, id: Number(m[2]) } : null
}

/** The body of `path` as text (JSON or HTML), or null for a path that is neither. */
export function bodyOf(path: string): string | null {
  const r = route(path)
  if (!r) return null
  return r.answer === "small" ? JSON.stringify(small(r.id)) : page(r.id)
}

/** The answer to `path` as a Response, as the front answering itself makes it. */
export function answer(path: string): Response {
  const r = route(path)
  if (!r) return new Response("not found", { status: 404 })
  return r.answer === "small" ? Response.json(small(r.id)) : new Response(page(r.id), { headers: HTML_TYPE })
}
