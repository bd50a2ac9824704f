// Reading C headers, ffi.ts and PROTOCOL.md as text, for the layout cross-checks of the slot region
// (test/native), the contest table (test/leases) and the topic (test/events).
import { describe, expect, test } from "bun:test"

export const stripC = (s: string) => s.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ")
export const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())

/** [] when `a` and `b` agree, else one line saying how they differ. */
export const eq = (what: string, a: unknown, b: unknown): string[] =>
  JSON.stringify(a) === JSON.stringify(b) ? [] : [`${what}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`]

export function fnv1a32(s: string): number {
  let h = 0x811c9dc5
  for (const byte of new TextEncoder().encode(s)) h = Math.imul(h ^ byte, 0x01000193) >>> 0
  return h >>> 0
}

/** The value of `#define name <integer>` (decimal or hex, optional u suffix, optionally in parentheses). */
export function cDefine(c: string, name: string): number {
  const int = "(-?(?:0x[0-9a-fA-F]+|\\d+))u?"
  const m = new RegExp(`^#define\\s+${name}\\s+(?:\\(${int}\\)|${int}\\b)`, "m").exec(stripC(c))
  if (!m) throw new Error(`#define ${name} not found`)
  return Number(m[1] ?? m[2])
}

/** The entries of `enum name`, every one with an explicit value; keys lose `prefix` (a key without it gets a "!"). */
export function cEnum(c: string, name: string, prefix = ""): Record<string, number> {
  const m = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(stripC(c))
  if (!m) throw new Error(`enum ${name} not found`)
  const out: Record<string, number> = {}
  for (const entry of m[1]!
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [key, value] = entry.split("=").map((s) => s.trim())
    if (value === undefined) throw new Error(`enum ${name}: ${key} has no explicit value`)
    out[key!.startsWith(prefix) ? key!.slice(prefix.length) : `!${key}`] = Number(value)
  }
  return out
}

/** The part of a Markdown page from the line `heading` matches up to the next line `end` matches. */
export function section(md: string, heading: RegExp, end = /^## /): string {
  const lines = md.split("\n")
  const start = lines.findIndex((l) => heading.test(l))
  if (start < 0) throw new Error(`PROTOCOL.md has no section ${heading}`)
  const stop = lines.findIndex((l, i) => i > start && end.test(l))
  return lines.slice(start, stop < 0 ? undefined : stop).join("\n")
}

export interface FfiSignature {
  args: string[]
  returns: string
}

const SCALAR: Record<string, string> = {
  int: "i32",
  int32_t: "i32",
  uint32_t: "u32",
  int64_t: "i64",
  double: "f64",
  void: "void",
}

/** A C declaration without its parameter name ("const char *", "uint32_t") as a bun:ffi type name. */
function ffiType(t: string): string {
  if (t.includes("*")) return /\bchar\s*\*/.test(t) ? "cstring" : "ptr"
  const base = t.replace(/\bconst\b/g, "").trim()
  if (!(base in SCALAR)) throw new Error(`no FFI type for C type "${t}"`)
  return SCALAR[base]!
}

/** The prototype of every function named `<prefix>…` in a header, as FFI types. */
export function cPrototypes(h: string, prefix: string): Map<string, FfiSignature> {
  const out = new Map<string, FfiSignature>()
  const re = new RegExp(`^[ \\t]*((?:const\\s+)?\\w+(?:\\s*\\*)?)\\s*(${prefix}\\w+)\\s*\\(([^)]*)\\)\\s*;`, "gm")
  for (const m of stripC(h).matchAll(re)) {
    const params = m[3]!.trim()
    const args =
      params === "void" || params === "" ? [] : params.split(",").map((p) => ffiType(p.trim().replace(/\w+$/, "")))
    out.set(m[2]!, { args, returns: ffiType(m[1]!) })
  }
  return out
}

/** One symbol table of ffi.ts (`const <table> = { … }`), read as text: it is not exported. */
export function ffiSymbols(src: string, table: "symbols" | "leaseSymbols" | "topicSymbols"): Map<string, FfiSignature> {
  const start = src.indexOf(`const ${table} = {`)
  if (start < 0) throw new Error(`ffi.ts has no table ${table}`)
  const block = src.slice(start, src.indexOf("\n}", start))
  const alias = (t: string) => (t === "none" ? "void" : t)
  const out = new Map<string, FfiSignature>()
  for (const m of block.matchAll(/(\w+):\s*\{([^{}]*)\}/g)) {
    const args = /args:\s*\[([^\]]*)\]/.exec(m[2]!)
    const returns = /returns:\s*(\w+)/.exec(m[2]!)
    if (!args || !returns) continue
    out.set(m[1]!, {
      args: args[1]!
        .split(",")
        .map((a) => a.trim())
        .filter(Boolean)
        .map(alias),
      returns: alias(returns[1]!),
    })
  }
  return out
}

/**
 * A layout cross-check as tests: every check agrees on the real sources (`agree`), and each mutation of one side
 * (text or TS constants) makes at least one check report a mismatch (`fails`), a text mutation only if it applied.
 */
export function layoutTests<S, T>(
  names: { agree: string; fails: string },
  checks: Record<string, (s: S, ts: T) => string[]>,
  real: S,
  realTs: T,
  mutations: { text: [string, (s: S) => S][]; ts: [string, (ts: T) => T][] },
) {
  describe(names.agree, () => {
    test.each(Object.keys(checks))("%s", (name) => expect(checks[name]!(real, realTs)).toEqual([]))
  })
  const mismatches = (s: S, ts: T) =>
    Object.entries(checks).flatMap(([name, check]) => {
      try {
        return check(s, ts)
      } catch (e) {
        return [`${name}: ${(e as Error).message}`]
      }
    })
  describe(names.fails, () => {
    test.each(mutations.text)("it reports %s", (_what, mutate) => {
      const mutated = mutate(real)
      expect(mutated).not.toEqual(real) // the mutation applied: the text it edits still exists
      expect(mismatches(mutated, realTs).length).toBeGreaterThan(0)
    })
    test.each(mutations.ts)("it reports %s", (_what, mutate) => {
      expect(mismatches(real, mutate(realTs)).length).toBeGreaterThan(0)
    })
  })
}
