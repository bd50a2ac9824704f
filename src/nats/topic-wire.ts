// The NATS mapping of a topic across hosts (docs/PROTOCOL.md §11.1, §11.2): an event's type as subject tokens and
// back, the subject a subscriber's filter takes, the fewest subscriptions that cover a host's filters, and the prefix
// before each event (the sender writes it, the receiver checks it).
const enc = new TextEncoder()

/** The bytes before the event (§11.2, little-endian): version, kind, 2 bytes 0, bridge, seq, pos, ring. */
export const PREFIX = 24
export const VERSION = 1
export const KIND_EVENT = 1

// §11.1: a subject token per `.`-separated part; [A-Za-z0-9_-] stay, any other byte is ~XX, an empty part is ~.
const PLAIN = new Uint8Array(256)
for (const c of enc.encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")) PLAIN[c] = 1
const HEX = "0123456789ABCDEF"

function tokens(type: Uint8Array): string[] {
  const out: string[] = []
  let tok = ""
  for (const b of type) {
    if (b === 0x2e) out.push(tok === "" ? "~" : tok), (tok = "")
    else tok += PLAIN[b] ? String.fromCharCode(b) : `~${HEX[b >> 4]}${HEX[b & 15]}`
  }
  out.push(tok === "" ? "~" : tok)
  return out
}

/** The subjects of §11.1 for one topic. */
export function topicSubjects(topic: string) {
  const root = `slotbus.ev.${topic.replaceAll(".", "~")}`
  return {
    root,
    /** The subject an event of this type goes to. */
    event: (type: Uint8Array | string) =>
      `${root}.${tokens(typeof type === "string" ? enc.encode(type) : type).join(".")}`,
    /** The subject that carries every type a filter selects (for a prefix not ending at a `.`, a superset). */
    filter: (mode: "any" | "exact" | "prefix", type: Uint8Array | string) => {
      const t = typeof type === "string" ? enc.encode(type) : type
      if (mode === "any" || t.length === 0) return `${root}.>`
      const toks = tokens(t)
      if (mode === "exact") return `${root}.${toks.join(".")}`
      toks.pop() // the last part is partial (or empty: the prefix ends at a `.`)
      return toks.length ? `${root}.${toks.join(".")}.>` : `${root}.>`
    },
  }
}

/** The type an event subject carries (§11.1, undone), or null when it is not one of the topic's. */
export function typeOfSubject(root: string, subject: string): Uint8Array | null {
  if (!subject.startsWith(`${root}.`)) return null
  const out: number[] = []
  const toks = subject.slice(root.length + 1).split(".")
  for (let i = 0; i < toks.length; i++) {
    if (i > 0) out.push(0x2e)
    const t = toks[i]!
    if (t === "~") continue
    for (let j = 0; j < t.length; j++) {
      if (t[j] !== "~") {
        out.push(t.charCodeAt(j))
        continue
      }
      const b = Number.parseInt(t.slice(j + 1, j + 3), 16)
      if (t.length < j + 3 || Number.isNaN(b)) return null
      out.push(b)
      j += 2
    }
  }
  return out.length >= 1 && out.length <= 255 ? new Uint8Array(out) : null
}

/** Whether subject pattern `p` (exact or ending in `.>`) only matches what `q` matches too, p ≠ q. */
function coveredBy(p: string, q: string): boolean {
  if (p === q || !q.endsWith(".>")) return false
  const stem = q.slice(0, -1) // "….": p must have at least one more token after it
  return p.startsWith(stem) && p.length > stem.length
}

/** The smallest set of patterns matching what `all` matches, none covering another: a message matches one. */
export function cover(all: Iterable<string>): string[] {
  const set = [...new Set(all)]
  return set.filter((p) => !set.some((q) => coveredBy(p, q))).sort()
}

/** Whether `subject` is one that `pattern` (exact or ending in `.>`) matches. */
export function matches(subject: string, pattern: string): boolean {
  return subject === pattern || (pattern.endsWith(".>") && subject.startsWith(pattern.slice(0, -1)))
}
