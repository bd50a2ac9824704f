// What a server builds from a request's Host, target and method, checked first: a request listener never throws, so a
// Host that is no URL authority is answered 400 and a method a WHATWG Request refuses 501 (RFC 9110 §15.6.2: not
// served for any resource, so no Allow header), each with a JSON body, on Bun and Node alike.

/** RFC 3986's host (a reg-name, IPv4 or a bracketed IP literal) and an optional port: no "@", "/", "?", "#". */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~!$&'()*+,;=%]+)(?::[0-9]*)?$/

/** The Fetch standard's forbidden methods: Node's Request throws on them, Bun's takes TRACE; both refuse here. */
const FORBIDDEN = new Set(["CONNECT", "TRACE", "TRACK"])

const answer = (status: number, error: string, message: string) => Response.json({ error, message }, { status })

let lastGood: string | undefined // a server hears one Host again and again: checked once (URL.canParse: ~0.5 µs)

/** Why `host` (a Host header's value) is no URL authority, or null when `http://<host>/` is a URL. */
export function hostProblem(host: string): string | null {
  if (host === lastGood) return null
  if (!AUTHORITY.test(host) || !URL.canParse(`http://${host}/`))
    return `the Host header ${JSON.stringify(host)} is no host[:port]`
  lastGood = host
  return null
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"])

/** Whether a host name (a Host's, an Origin's, a bound hostname) names this machine's loopback: localhost, 127.0.0.1, ::1. */
export const isLoopbackName = (name: string) => LOOPBACK.has(name.toLowerCase())

/** The host name of a Host header value, lower case: "localhost:8080" → "localhost", "[::1]:80" → "[::1]". */
export function hostName(host: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(host.trim())
  return (m ? m[1]! : host).toLowerCase()
}

/** A 400 for a request whose Host header is none or more than one, or is no authority; null for one that is fine. */
export function refuseHost(hosts: readonly string[]): Response | null {
  if (hosts.length > 1) return answer(400, "bad-request", "a request has one Host header")
  const problem = hosts.length === 1 ? hostProblem(hosts[0]!) : null
  return problem === null ? null : answer(400, "bad-request", problem)
}

/** A 501 for a method no WHATWG Request carries (CONNECT, TRACE, TRACK); null for any other. */
export function refuseMethod(method: string): Response | null {
  const first = method.charCodeAt(0) | 0x20 // each of them begins with a C or a T: any other is let through at once
  if (first !== 0x63 && first !== 0x74) return null
  const upper = method.toUpperCase()
  return FORBIDDEN.has(upper) ? answer(501, "not-implemented", `this server does not serve ${upper} requests`) : null
}

/** A dot segment (".", "..", either spelled with %2e) or a backslash in a path: its URL resolves it into another path
 * (RFC 3986 §5.2.4; a WHATWG URL reads "\\" as "/" in an http URL), so an app that routed the path as it came would
 * hand its worker another one. */
const RESOLVED = /(?:^|[/\\])(?:\.|%2e){1,2}(?=[/\\]|$)|\\/i

/** A 400 for a target whose path its URL would change (a dot segment, a backslash); null for one kept as it came. */
export function refuseTarget(target: string): Response | null {
  const path = targetPath(target)
  if (path === null || !RESOLVED.test(path)) return null // no path: the caller refuses it as no URL
  return answer(
    400,
    "bad-request",
    `the request target ${JSON.stringify(target)} has a dot segment or a backslash in its path: its URL would name another path than the one this server routed`,
  )
}

/** A 400 naming what could not be made of a request (a target that is no path, a header a Request refuses). */
export const badRequest = (message: string) => answer(400, "bad-request", message)

/** The 501 / 400 for a Bun.serve request no slotbus server serves (a method above, a Host that is no authority). */
export function refuseServed(req: Request): Response | null {
  const host = req.headers.get("host") // Bun joins several with ", ": no authority either
  return refuseMethod(req.method) ?? refuseHost(host === null ? [] : [host])
}

/** The path of a request target or URL as it came (not resolved): up to its query or fragment; null if it has none. */
export function targetPath(target: string): string | null {
  const start = pathStart(target)
  if (start < 0) return null
  let end = target.length
  for (const c of "?#") {
    const at = target.indexOf(c, start)
    if (at >= 0 && at < end) end = at
  }
  return target.slice(start, end)
}

/** Where the path begins in a Bun.serve request's URL, -1 if nowhere: a request without Host has a bare path. */
export function pathStart(url: string): number {
  if (url[0] === "/") return 0
  const scheme = url.indexOf("//")
  return scheme < 0 ? -1 : url.indexOf("/", scheme + 2)
}
