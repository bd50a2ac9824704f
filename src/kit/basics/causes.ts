// An error as one line with the causes it carries: Node's fetch says only "fetch failed", its reason ("bad port",
// "connect ECONNREFUSED 127.0.0.1:3200") in its cause, and a retry line that printed the message alone hid it.

/** `e`'s message, then each cause's (or its code) in parentheses that the text does not hold yet: "fetch failed (bad port)". */
export function withCauses(e: unknown): string {
  let text = e instanceof Error ? e.message : String(e)
  const seen = new Set<unknown>([e])
  for (let c = causeOf(e); c != null && !seen.has(c) && seen.size <= 4; c = causeOf(c)) {
    seen.add(c)
    const said = c instanceof Error ? c.message || (c as { code?: string }).code : typeof c === "string" ? c : undefined
    if (said && !text.includes(said)) text += ` (${said})`
  }
  return text
}

const causeOf = (e: unknown): unknown =>
  typeof e === "object" && e !== null ? (e as { cause?: unknown }).cause : undefined
