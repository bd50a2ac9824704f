// The deterministic event stream cross-process tests publish, and the filters they subscribe with.
export const TYPES = ["session.registered", "session.closed", "job.done", "cache.changed"] as const
export const typeOf = (seq: number) => TYPES[(seq * 7 + (seq >> 3)) % 4]!
export const scrollOf = (seq: number) => (seq % 3 === 0 ? "A" : "B")

export const FILTERS = [
  {},
  { type: "session.*" },
  { type: "job.done" },
  { type: "session.*", routing: { scroll: "A" } },
] as const

export function matches(f: { type?: string; routing?: { scroll?: string } }, seq: number): boolean {
  const t = typeOf(seq)
  if (f.type !== undefined && (f.type.endsWith("*") ? !t.startsWith(f.type.slice(0, -1)) : t !== f.type)) return false
  return f.routing?.scroll === undefined || f.routing.scroll === scrollOf(seq)
}
