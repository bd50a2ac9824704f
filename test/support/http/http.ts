// Helpers for the http tests: the hub and worker fixtures as child processes, curl, an SSE reader.
import { join } from "node:path"
import { FIXTURES, run, spawn, type Child } from "../helpers.ts"
import { sayWhySkipped, toolSkipReason } from "../tools.ts"

/**
 * Route patterns a hostile worker declares (`--routes=hostile`): valid patterns (no space, "?" or "#") that are
 * HTML, a script, or terminal escapes. The status page and `slotbus status` must show them as text.
 */
export const HOSTILE_ROUTES = [
  "/<img/src=x/onerror=document.title='pwned'>",
  "/</script><script>window.pwned=1</script>",
  "/\x1b[2J\x1b[31mred\x07",
  "/&lt;amp&gt;",
]

/** Starts test/support/http/http-worker.ts and waits until it is registered ("ready"), or until it fails. */
export async function startWorker(hubUrl: string, name: string, flags: string[] = []): Promise<Child> {
  const p = spawn([process.execPath, join(FIXTURES, "http/http-worker.ts"), hubUrl, name, ...flags])
  try {
    await p.waitLine(/^ready \d+$/)
  } catch (e) {
    await p.kill()
    throw e
  }
  return p
}

/** Runs a worker expected to fail; resolves with its "error <Class> <message>" line. */
export async function failingWorker(hubUrl: string, name: string, flags: string[] = []): Promise<string> {
  const p = spawn([process.execPath, join(FIXTURES, "http/http-worker.ts"), hubUrl, name, ...flags])
  try {
    return (await p.waitLine(/^error .*/))[0]
  } finally {
    await p.kill()
  }
}

export function startHubProcess(args: string[]): Child {
  return spawn([process.execPath, join(FIXTURES, "http/http-hub.ts"), ...args])
}

export interface CurlResult {
  status: number
  headers: Record<string, string[]>
  body: string
}

/** Why the tests that run curl cannot run here, or null. */
export const curlSkip = toolSkipReason("curl")
sayWhySkipped("the tests through curl", curlSkip)

/** Runs curl with the response head on stdout (and the body, unless -o) and parses it. */
export async function curl(args: string[]): Promise<CurlResult> {
  const head = args.includes("-I") ? [] : ["-D", "-"]
  const { stdout: out, stderr: err, code } = await run(["curl", "-s", "-S", ...head, "--max-time", "20", ...args])
  if (code !== 0) throw new Error(`curl ${args.join(" ")} exited ${code}: ${err}`)
  const blocks = out.split("\r\n\r\n")
  let i = 0
  while (i + 1 < blocks.length && /^HTTP\/\S+ 1\d\d/.test(blocks[i]!)) i++ // skip 100 Continue
  const [statusLine, ...headerLines] = blocks[i]!.split("\r\n")
  const headers: Record<string, string[]> = {}
  for (const l of headerLines) {
    const c = l.indexOf(":")
    ;(headers[l.slice(0, c).toLowerCase()] ??= []).push(l.slice(c + 1).trim())
  }
  return { status: Number(statusLine!.split(" ")[1]), headers, body: blocks.slice(i + 1).join("\r\n\r\n") }
}

export interface SseMessage {
  event: string
  data: string
  id?: string
  comment?: string
}

/** Reads text/event-stream frames from a fetch Response. */
export class SseReader {
  readonly received: SseMessage[] = []
  private buf = ""
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>
  private readonly decoder = new TextDecoder()
  ended = false

  constructor(res: Response) {
    this.reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>
  }

  /** Resolves with the first message (received so far or later) that `pred` accepts. */
  async next(pred: (m: SseMessage) => boolean, timeoutMs = 10_000): Promise<SseMessage> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const found = this.received.find(pred)
      if (found) return found
      if (this.ended) throw new Error(`SSE stream ended; got ${JSON.stringify(this.received)}`)
      const left = deadline - performance.now()
      if (left <= 0)
        throw new Error(`no matching SSE message within ${timeoutMs}ms; got ${JSON.stringify(this.received)}`)
      let timer: ReturnType<typeof setTimeout> | undefined
      const r = await Promise.race([
        this.reader.read(),
        new Promise<null>((res) => (timer = setTimeout(() => res(null), left))),
      ])
      clearTimeout(timer)
      if (r === null) continue
      if (r.done) {
        this.ended = true
        continue
      }
      this.buf += this.decoder.decode(r.value, { stream: true })
      for (let end = this.buf.indexOf("\n\n"); end >= 0; end = this.buf.indexOf("\n\n")) {
        this.parse(this.buf.slice(0, end))
        this.buf = this.buf.slice(end + 2)
      }
    }
  }

  private parse(frame: string) {
    const m: SseMessage = { event: "message", data: "" }
    const data: string[] = []
    for (const line of frame.split("\n")) {
      if (line.startsWith(":")) m.comment = line.slice(1).trim()
      else if (line.startsWith("event: ")) m.event = line.slice(7)
      else if (line.startsWith("id: ")) m.id = line.slice(4)
      else if (line.startsWith("data: ")) data.push(line.slice(6))
    }
    m.data = data.join("\n")
    this.received.push(m)
  }

  async close() {
    await this.reader.cancel().catch(() => {})
  }
}
