// The one check every public options object goes through (issue 19): a misspelt option must never be ignored.
// An unknown name is a TypeError naming it, the names that are valid, and the nearest one ("did you mean").

/** What went wrong with an options object; `message` is the whole sentence a TypeError would carry. */
export interface OptionProblem {
  kind: "not-object" | "unknown" | "missing"
  /** The API, as the message names it ("createHub", "subscribe filter"). */
  where: string
  /** The unknown or missing name (kind "unknown" / "missing"). */
  name?: string
  /** The valid name it is nearest to, if any (kind "unknown"). */
  suggestion?: string
  /** What to write instead, for a name that moved (kind "unknown"). */
  moved?: string
  known: readonly string[]
  message: string
}

export interface OptionRules {
  /** Names that must be given (not undefined). */
  required?: readonly string[]
  /** What one name is called in messages. Default "option". */
  noun?: string
  /** Names that moved, each with what to write instead ("restart: { windowMs }"): refused, saying where they went. */
  moved?: Readonly<Record<string, string>>
  /** Builds the error instead of a TypeError (the stdio config keeps its StdioConfigError). */
  error?: (problem: OptionProblem) => Error
}

/**
 * The option names of `T`, as the set checkOptions takes. The literal must list every key of T and nothing
 * else (tsc checks both), so an option added to the interface and forgotten here is a compile error.
 */
export function optionNames<T extends object>(names: { [K in keyof Required<T>]: true }): ReadonlySet<string> {
  return new Set(Object.keys(names))
}

/**
 * Checks an options object against the names `known` and returns it (`{}` for undefined): a non-object, an
 * unknown name, or a missing required one is a TypeError saying which, what the valid names are, and for a
 * near miss which one was meant.
 */
export function checkOptions<T extends object>(
  opts: T | undefined,
  known: ReadonlySet<string>,
  where: string,
  rules?: OptionRules,
): T {
  if (opts === undefined) return NO_OPTIONS as T // shared: a call without options allocates nothing
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) fail(notObject(opts, known, where), rules)
  for (const name in opts) if (!known.has(name)) fail(unknown(name, known, where, rules), rules)
  if (rules?.required)
    for (const name of rules.required)
      if ((opts as Record<string, unknown>)[name] === undefined) fail(missing(name, known, where, rules.noun), rules)
  return opts
}

const NO_OPTIONS = Object.freeze({})

function fail(problem: OptionProblem, rules: OptionRules | undefined): never {
  throw rules?.error ? rules.error(problem) : new TypeError(problem.message)
}

function notObject(opts: unknown, known: ReadonlySet<string>, where: string): OptionProblem {
  const got = opts === null ? "null" : Array.isArray(opts) ? "an array" : typeof opts
  return {
    kind: "not-object",
    where,
    known: [...known],
    message: `${where} takes an object { ${[...known].join(", ")} }, got ${got}`,
  }
}

/** Options that became others: what to write instead (0.2: a transport is passed in as `remote`). */
const MOVED: Record<string, string> = {
  nats: 'remote: nats(url), with nats from "slotbus/nats"',
}

function unknown(name: string, known: ReadonlySet<string>, where: string, rules?: OptionRules): OptionProblem {
  const noun = rules?.noun ?? "option"
  const moved = [rules?.moved, noun === "option" ? MOVED : undefined].find((t) => t && Object.hasOwn(t, name))?.[name]
  if (moved)
    return {
      kind: "unknown",
      where,
      name,
      moved,
      known: [...known],
      message: `${where}: the ${noun} "${name}" is now ${moved}`,
    }
  const suggestion = didYouMean(name, known)
  const list = [...known]
  return {
    kind: "unknown",
    where,
    name,
    suggestion,
    known: list,
    message: `${where}: unknown ${noun} "${name}"; ${suggestion ? `did you mean "${suggestion}"? ` : ""}the ${noun}s are ${list.join(", ")}`,
  }
}

function missing(name: string, known: ReadonlySet<string>, where: string, noun = "option"): OptionProblem {
  return { kind: "missing", where, name, known: [...known], message: `${where}: the ${noun} "${name}" is required` }
}

/**
 * The valid name `name` most likely meant, ignoring case: the nearest within 2 edits (1 for names of 3 letters
 * or fewer), a swap of neighbours counting as one ("prot" → "port"); else one whose beginning is that near
 * ("timout" → "timeoutMs", "ttl" → "ttlMs"), or one `name` begins with ("instancesCount" → "instances").
 */
export function didYouMean(name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase()
  const max = name.length <= 3 ? 1 : 2
  let best: string | undefined
  let bestScore = Infinity
  for (const k of known) {
    const kl = k.toLowerCase()
    const { whole, prefix } = editDistances(lower, kl)
    let score = whole <= max ? whole : Infinity
    if (name.length >= 3 && prefix <= max) score = Math.min(score, prefix + 0.5)
    if (kl.length >= 3 && lower.startsWith(kl)) score = Math.min(score, 0.5)
    if (score < bestScore) (best = k), (bestScore = score)
  }
  return best
}

/**
 * Damerau–Levenshtein distance (optimal string alignment: insertions, deletions, substitutions, swaps of
 * neighbours) from `a` to `b` (whole), and to the nearest beginning of `b` at least 3 long (prefix).
 */
export function editDistances(a: string, b: string): { whole: number; prefix: number } {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)]
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1)
      row.push(d)
    }
    rows.push(row)
  }
  const last = rows[a.length]!
  return { whole: last[b.length]!, prefix: Math.min(...last.slice(Math.min(3, b.length))) }
}

/** What a room's `remote` option names: a transport of its own choosing, made for the room (`nats(url)`). */
export const REMOTE_EXAMPLE = 'nats(url) from "slotbus/nats"'

/**
 * Checks a room's `remote` option: an object with each method of that room's port (the interface the room owns and
 * a transport implements), else a TypeError saying what to pass.
 */
export function checkRemote<T extends object>(
  value: unknown,
  methods: readonly (keyof T & string)[],
  where: string,
): T {
  const missing =
    value === null || typeof value !== "object"
      ? methods
      : methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== "function")
  if (missing.length)
    throw new TypeError(
      `${where}: remote must be a transport such as ${REMOTE_EXAMPLE}, got ${value === null ? "null" : typeof value === "object" ? `an object without ${missing.join(", ")}` : typeof value === "string" ? `the string ${JSON.stringify(value.slice(0, 80))}` : typeof value}`,
    )
  return value as T
}

/**
 * For a class whose instances only a factory makes (`SlotBus.listen`, `Topic.open`, …): the factory passes
 * `key`, and a `new` without it is a TypeError pointing at the factory instead of a half-made object.
 */
export function madeBy(given: unknown, key: symbol, cls: string, factory: string): void {
  if (given !== key) throw new TypeError(`${cls} is not constructed with new: use ${factory}`)
}
