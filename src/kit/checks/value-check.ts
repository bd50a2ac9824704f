// The one name check and the one number check every room uses (issue 46): each room keeps its own limits, the
// rule and the message are one. `${where}: ${what} must be …, got …` (where is left out when not given). And the
// one thenable test the core's serving pipeline and its RPC share.

/** What went wrong with a value; `message` is the whole sentence the error carries. */
export interface ValueProblem {
  /** "type": not a string / not a number (a TypeError by default); "range": the wrong one (RangeError for numbers). */
  kind: "type" | "range"
  /** The API, as the message names it ("Contest.open"); absent when the caller says it elsewhere. */
  where?: string
  /** What the value is ("bus name", "timeoutMs", "durable.maxBytes"). */
  what: string
  /** The message after `what`: "must be an integer in 1..1024, got 0". */
  reason: string
  message: string
}

interface Rule {
  what: string
  where?: string
  /** Builds the error instead (a room's own class: ContestOpenError, StdioConfigError). */
  error?: (problem: ValueProblem) => Error
}

/** The characters of a name any C string, file name, socket name and NATS subject can carry as they are. */
export const NAME_CHARS = "A-Za-z0-9._-"

export interface NameRule extends Rule {
  /** Longest name. Default 64 (the C side's limit for bus, topic and contest names). */
  max?: number
  /** The characters allowed, as a regex character class body; null: any. Default NAME_CHARS. */
  chars?: string | null
}

const patterns = new Map<string, RegExp>()

/** Why `value` is not a name by `rule` (the whole message), or undefined when it is one. */
export function nameProblem(value: unknown, rule: NameRule): ValueProblem | undefined {
  const max = rule.max ?? 64
  const chars = rule.chars === undefined ? NAME_CHARS : rule.chars
  if (typeof value === "string") {
    const key = `${chars}\0${max}`
    let re = patterns.get(key)
    if (!re) patterns.set(key, (re = new RegExp(`^[${chars ?? "^"}]{1,${max}}$`))) // [^]: any character
    if (re.test(value)) return undefined
  }
  const of = chars === null ? "" : ` of [${chars}]`
  return problem(typeof value === "string" ? "range" : "type", rule, `must be 1-${max} characters${of}`, value)
}

/** `value` when it is a name by `rule`, else a TypeError (or `rule.error`) in the one shape. */
export function checkName(value: unknown, rule: NameRule): string {
  const p = nameProblem(value, rule)
  if (p) throw rule.error ? rule.error(p) : new TypeError(p.message)
  return value as string
}

export interface NumberRule extends Rule {
  /** Default 0. */
  min?: number
  /** Default Number.MAX_SAFE_INTEGER (shown as "≥ min"). */
  max?: number
  /** A whole number. Default true. */
  integer?: boolean
  /** Infinity is allowed too (no limit), above a finite max. */
  infinite?: boolean
  /** 0 is allowed too (off), below min. */
  zero?: boolean
  /** Only powers of two (in min..max). */
  powerOfTwo?: boolean
  /** Why the range is what it is, shown after it ("the slot's arena"). */
  note?: string
  /** What undefined stands for; without it undefined is refused. */
  dflt?: number
}

/**
 * `value` when it is a number by `rule` (`rule.dflt` for undefined), else a TypeError when it is not a number
 * and a RangeError when it is the wrong one (or `rule.error`), in the one shape.
 */
export function checkNumber(value: unknown, rule: NumberRule): number {
  if (value === undefined && rule.dflt !== undefined) return rule.dflt
  // the common case without building anything: it runs per request for statuses and timeouts
  if (
    typeof value === "number" &&
    value >= (rule.min ?? 0) &&
    value <= (rule.max ?? Number.MAX_SAFE_INTEGER) &&
    (rule.integer === false || Number.isInteger(value)) &&
    !rule.powerOfTwo
  )
    return value
  const { min = 0, max = Number.MAX_SAFE_INTEGER, integer = true, infinite, zero, powerOfTwo, note } = rule
  if (typeof value === "number") {
    if ((value === Infinity && infinite) || (value === 0 && zero)) return value
    if (value >= min && value <= max && (!integer || Number.isInteger(value)))
      if (!powerOfTwo || (value > 0 && 2 ** Math.round(Math.log2(value)) === value)) return value
  }
  const finite = max < Infinity && max >= Number.MAX_SAFE_INTEGER ? " finite" : "" // "≥ 0" alone would allow Infinity
  const kind = powerOfTwo ? "a power of two" : integer ? "an integer" : `a${finite} number`
  const low = min === Number.MIN_VALUE ? "> 0" : `≥ ${min}` // MIN_VALUE: any positive number
  const range =
    max >= Number.MAX_SAFE_INTEGER ? low : min === Number.MIN_VALUE ? `${low}, ≤ ${max}` : `in ${min}..${max}`
  const reason = `must be ${kind} ${range}${note ? ` (${note})` : ""}${zero ? " or 0" : ""}${infinite ? " or Infinity" : ""}`
  const p = problem(typeof value === "number" ? "range" : "type", rule, reason, value)
  if (rule.error) throw rule.error(p)
  throw p.kind === "type" ? new TypeError(p.message) : new RangeError(p.message)
}

function problem(kind: ValueProblem["kind"], rule: Rule, must: string, value: unknown): ValueProblem {
  const reason = `${must}, got ${shown(value)}`
  const message = `${rule.where ? `${rule.where}: ` : ""}${rule.what} ${reason}`
  return { kind, where: rule.where, what: rule.what, reason, message }
}

/** A value as a message shows it: strings quoted (and cut at 80), numbers as they print, else their type. */
function shown(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v)
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean" || v === undefined) return String(v)
  return v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`
}

/**
 * A handler's answer still to come: a promise or any other thenable, awaited the same way on every path (as
 * `await` would). Checked after `instanceof Promise`, the common case.
 */
export const isThenable = (out: unknown): out is PromiseLike<unknown> =>
  typeof (out as PromiseLike<unknown> | null)?.then === "function"

/**
 * Whether a handler's second argument is node:http's ServerResponse (Express's `res` too): it has `writeHead`, which
 * Bun.serve's Server (the second argument of a fetch handler or route) has not. Their arity cannot tell them apart.
 */
export const isNodeResponse = (second: unknown): second is { writeHead: (...args: never[]) => unknown } =>
  typeof (second as { writeHead?: unknown } | null | undefined)?.writeHead === "function"

// The Fetch standard's "bad ports" (fetch.spec.whatwg.org/#port-blocking), as Node's fetch (undici) and browsers
// refuse them; Bun's fetch does not.
const BAD_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
])

/** Whether browsers and Node's fetch refuse to connect to `port` (one of the Fetch standard's bad ports). */
export const isBadPort = (port: number): boolean => BAD_PORTS.has(port)

/** Why a server on a bad port is refused, after "port N": the sentence its error carries. */
export const BAD_PORT_REASON =
  "is one of the Fetch standard's bad ports: browsers and Node's fetch refuse to connect to it (a Node worker or " +
  "client, a browser's page), though the server would listen; pick another port"

/**
 * A TCP port to serve HTTP on (0: the system picks one), by `rule`'s what and where; a bad port of the Fetch standard
 * is refused too (a RangeError, or `rule.error`), since no browser and no Node client could reach it.
 */
export function checkPort(value: unknown, rule: Rule & { dflt?: number }): number {
  const port = checkNumber(value, { ...rule, max: 65535 })
  if (!isBadPort(port)) return port
  const reason = `${port} ${BAD_PORT_REASON}`
  const p: ValueProblem = { kind: "range", where: rule.where, what: rule.what, reason, message: "" }
  p.message = `${rule.where ? `${rule.where}: ` : ""}${rule.what} ${reason}`
  if (rule.error) throw rule.error(p)
  throw new RangeError(p.message)
}
