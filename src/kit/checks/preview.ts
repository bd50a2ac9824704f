// A value shown in an error message on one line, the same under every runtime (Bun.inspect and node:util's inspect
// differ in quotes, trailing commas and depth, so a message would depend on the runtime that made it). Bounded: it
// stops at `max` characters however large the value, and two levels down it names a container instead of opening it.
// Made for data (what an RPC reply decodes to): an accessor on a value given is read as any property is.

const DEPTH = 2
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** `value` as one line of at most `max` characters (cut with "..."): strings quoted as JSON, containers opened 2 deep. */
export function preview(value: unknown, max = 120): string {
  const out = new Line(max + 1)
  show(value, out, 0, new Set())
  const s = out.text()
  return s.length > max ? `${s.slice(0, max - 3)}...` : s
}

/** The text so far, and whether it is long enough to stop. */
class Line {
  private readonly parts: string[] = []
  private length = 0
  private readonly room: number
  constructor(room: number) {
    this.room = room
  }
  add(s: string): void {
    if (this.full) return
    this.parts.push(s.length > this.room ? s.slice(0, this.room) : s)
    this.length += s.length
  }
  get full(): boolean {
    return this.length >= this.room
  }
  text(): string {
    return this.parts.join("")
  }
}

function show(v: unknown, out: Line, depth: number, seen: Set<object>): void {
  if (typeof v === "string") return out.add(JSON.stringify(v.length > 200 ? v.slice(0, 200) : v))
  if (typeof v === "bigint") return out.add(`${v}n`)
  if (typeof v === "number") return out.add(Object.is(v, -0) ? "-0" : String(v))
  if (typeof v === "function") return out.add(`[Function${v.name ? ` ${v.name}` : ""}]`)
  if (typeof v !== "object" || v === null) return out.add(String(v))
  if (seen.has(v)) return out.add("[Circular]")
  if (v instanceof Date) return out.add(Number.isNaN(v.getTime()) ? "Invalid Date" : v.toISOString())
  if (v instanceof Error) return out.add(`[${v.name}: ${v.message}]`)
  if (v instanceof RegExp) return out.add(String(v))
  const name = tagOf(v)
  if (depth >= DEPTH) return out.add(`[${name}]`)
  seen.add(v)
  if (Array.isArray(v) || ArrayBuffer.isView(v)) {
    const items = v as ArrayLike<unknown>
    out.add(Array.isArray(v) ? "[" : `${name}(${items.length}) [`)
    for (let i = 0; i < items.length && !out.full; i++) {
      if (i > 0) out.add(", ")
      show(items[i], out, depth + 1, seen)
    }
  } else if (v instanceof Map || v instanceof Set) {
    out.add(`${name}(${v.size}) {`)
    let i = 0
    for (const entry of v) {
      if (out.full) break
      if (i++ > 0) out.add(", ")
      if (v instanceof Set) show(entry, out, depth + 1, seen)
      else {
        show(entry[0], out, depth + 1, seen)
        out.add(" => ")
        show(entry[1], out, depth + 1, seen)
      }
    }
  } else {
    out.add(name === "Object" ? "{" : `${name} {`)
    let i = 0
    for (const key in v) {
      if (out.full) break
      if (!Object.hasOwn(v, key)) continue
      out.add(`${i++ > 0 ? ", " : ""}${IDENTIFIER.test(key) ? key : JSON.stringify(key)}: `)
      show((v as Record<string, unknown>)[key], out, depth + 1, seen)
    }
  }
  seen.delete(v)
  out.add(Array.isArray(v) || ArrayBuffer.isView(v) ? "]" : "}")
}

/** What a container is called: its constructor's name ("Object" for a plain or null-prototype object). */
function tagOf(v: object): string {
  const proto = Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null
  const name = proto?.constructor?.name
  return typeof name === "string" && name !== "" ? name : "Object"
}
