// Route patterns shared by the hub and the worker SDK: "/items/:id", "/files/*", matched by specificity.
import { RouteError } from "./errors.ts"

export const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"] as const
export type RouteMethod = (typeof METHODS)[number]

/** Paths the hub answers itself before any worker route; no route may be declared under them. */
export const RESERVED_PATHS = ["/health", "/metrics", "/events", "/_slotbus"] as const

export type Params = Record<string, string>

/** The `:param` names in a pattern: "/users/:user/posts/:post" → "user" | "post". */
type ParamNames<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | ParamNames<`/${Rest}`>
  : P extends `${string}:${infer Name}`
    ? Name
    : never

/** The params a pattern yields, typed: "/items/:id/*" → { id: string; "*": string }; any string → Params. */
export type RouteParams<P extends string> = string extends P
  ? Params
  : { [K in ParamNames<P> | (P extends `${string}/*` ? "*" : never)]: string }

type Segment = { kind: "static"; text: string } | { kind: "param"; name: string } | { kind: "rest" }

export interface Route {
  method: RouteMethod
  pattern: string
  /** Pattern with parameter names erased ("/items/:"): two routes conflict when method and shape agree. */
  shape: string
  segments: Segment[]
}

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Parses and validates `METHOD pattern`; throws RouteError saying what is wrong. */
export function parseRoute(method: string, pattern: string): Route {
  const m = method.toUpperCase()
  if (!(METHODS as readonly string[]).includes(m))
    throw new RouteError(`method ${JSON.stringify(method)} is not one of ${METHODS.join(", ")}`)
  if (typeof pattern !== "string" || !pattern.startsWith("/") || /[\s?#\0]/.test(pattern))
    throw new RouteError(
      `route pattern must start with "/" and hold no spaces, "?" or "#", got ${JSON.stringify(pattern)}`,
    )
  const parts = splitPath(pattern)
  const segments: Segment[] = []
  const names = new Set<string>()
  parts.forEach((p, i) => {
    if (p === "*") {
      if (i !== parts.length - 1) throw new RouteError(`"*" may only end a pattern, in ${pattern}`)
      segments.push({ kind: "rest" })
    } else if (p.startsWith(":")) {
      const name = p.slice(1)
      if (!PARAM_NAME.test(name)) throw new RouteError(`parameter ":${name}" in ${pattern} must be a JS identifier`)
      if (names.has(name)) throw new RouteError(`parameter ":${name}" appears twice in ${pattern}`)
      names.add(name)
      segments.push({ kind: "param", name })
    } else {
      if (p.includes("*")) throw new RouteError(`"*" must be a whole segment at the end of ${pattern}`)
      segments.push({ kind: "static", text: p })
    }
  })
  const shape = "/" + segments.map((s) => (s.kind === "static" ? s.text : s.kind === "param" ? ":" : "*")).join("/")
  for (const r of RESERVED_PATHS) {
    if (shape === r || shape.startsWith(r + "/"))
      throw new RouteError(`route ${pattern} is under ${r}, which the hub answers itself; pick another path`)
  }
  return { method: m as RouteMethod, pattern, shape, segments }
}

/** "/a/b/" → ["a", "b"]: empty segments (doubled or trailing slashes) are ignored. */
export function splitPath(path: string): string[] {
  return path.split("/").filter((s) => s.length > 0)
}

/** Params of `route` for the already split path, or null when it does not match. */
export function matchSegments(route: Route, parts: readonly string[]): Params | null {
  const segs = route.segments
  let params: Params | null = null
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!
    if (s.kind === "rest") {
      ;(params ??= {})["*"] = parts.slice(i).map(decode).join("/")
      return params
    }
    const p = parts[i]
    if (p === undefined) return null
    if (s.kind === "static") {
      if (p !== s.text && decode(p) !== s.text) return null
    } else (params ??= {})[s.name] = decode(p)
  }
  return parts.length === segs.length ? (params ?? {}) : null
}

function decode(s: string): string {
  if (!s.includes("%")) return s
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

const RANK = { static: 0, param: 1, rest: 2 } as const

/** Orders routes so the most specific comes first: static beats ":param" beats "*", position by position. */
export function bySpecificity(a: Route, b: Route): number {
  const n = Math.min(a.segments.length, b.segments.length)
  for (let i = 0; i < n; i++) {
    const d = RANK[a.segments[i]!.kind] - RANK[b.segments[i]!.kind]
    if (d !== 0) return d
  }
  if (a.segments.length !== b.segments.length) return a.segments.length - b.segments.length
  return a.method === "*" ? 1 : b.method === "*" ? -1 : 0 // an exact method beats "*"
}

export const methodMatches = (route: RouteMethod, method: string) =>
  route === method || route === "*" || (route === "GET" && method === "HEAD")

/** A sorted list of routes with values attached: the first match by path and method wins. */
export class RouteTable<T> {
  private entries: { route: Route; value: T }[] = []

  /** Inserted after every route as specific as it (a sort per route made a large table's registration quadratic). */
  add(route: Route, value: T) {
    let lo = 0
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (bySpecificity(this.entries[mid]!.route, route) <= 0) lo = mid + 1
      else hi = mid
    }
    this.entries.splice(lo, 0, { route, value })
  }

  remove(pred: (route: Route, value: T) => boolean) {
    this.entries = this.entries.filter((e) => !pred(e.route, e.value))
  }

  find(pred: (route: Route, value: T) => boolean): { route: Route; value: T } | undefined {
    return this.entries.find((e) => pred(e.route, e.value))
  }

  get size() {
    return this.entries.length
  }

  values(): T[] {
    return this.entries.map((e) => e.value)
  }

  /**
   * The route for `method` and `path`: `{ value, params }`; `{ allow }` when only other methods match
   * the path; null when nothing does.
   */
  match(method: string, path: string): { route: Route; value: T; params: Params } | { allow: string[] } | null {
    const parts = splitPath(path)
    let allow: string[] | null = null
    for (const e of this.entries) {
      const params = matchSegments(e.route, parts)
      if (!params) continue
      if (methodMatches(e.route.method, method)) return { route: e.route, value: e.value, params }
      ;(allow ??= []).push(e.route.method)
    }
    return allow ? { allow } : null
  }
}
