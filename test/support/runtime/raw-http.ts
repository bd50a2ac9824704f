// One raw HTTP/1.1 request over TCP and its answer read to the close: for targets a client library would rewrite
// (dot segments, backslashes) before sending them.
import { connect } from "node:net"

/** A chunked body's data. */
function dechunk(body: string): string {
  let out = ""
  for (let at = 0; ; ) {
    const eol = body.indexOf("\r\n", at)
    const size = Number.parseInt(body.slice(at, eol), 16)
    if (!(size > 0)) return out
    out += body.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}

/** The status, headers and JSON body of one raw request's answer, read to the connection's close. */
export async function rawAnswer(port: number, raw: string) {
  const sock = connect(port, "127.0.0.1")
  const chunks: Buffer[] = []
  sock.on("data", (d: Buffer) => chunks.push(d))
  await new Promise((r) => sock.once("connect", r))
  sock.write(raw.replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n")) // no half-close: node:http drops those
  await new Promise((r) => sock.once("close", r))
  const text = Buffer.concat(chunks).toString("latin1")
  const [head = "", body = ""] = text.split("\r\n\r\n", 2)
  const headers = Object.fromEntries(
    head
      .split("\r\n")
      .slice(1)
      .map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
  )
  const whole = headers["transfer-encoding"] === "chunked" ? dechunk(body) : body
  const json: Record<string, unknown> = headers["content-type"]?.includes("json") ? JSON.parse(whole) : {}
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), headers, json }
}
