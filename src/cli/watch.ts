// How `slotbus status` reads a status server or a hub (a GET read whole, within bounds) and redraws what it read
// every second until Ctrl-C.
import { untilStopped } from "./prelude.ts"
import { clean } from "./report.ts"

const EVERY_MS = 1000
const FETCH_TIMEOUT_MS = 5000
/** The most an answer to `slotbus status` may be: a report is some KiB; more is no status server's. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024

/**
 * What a GET of `slotbus status` brought: the answer, read whole; or why not, and whether anything answered at
 * all (`answered`: a head came, its body did not, or was more than MAX_ANSWER_BYTES).
 */
export type Fetched =
  | { ok: true; answered: true; res: Response; text: string }
  | { ok: false; answered: boolean; why: string }

/**
 * GET `url` (over the unix socket `unix`, when given) for `slotbus status` and read its body, at most
 * MAX_ANSWER_BYTES of it, head and body within FETCH_TIMEOUT_MS: a server that answers without end holds neither
 * the memory nor the terminal. The HTTP hub's view reads its /health through it too.
 */
export async function fetchCapped(url: string, via: { unix?: string } = {}): Promise<Fetched> {
  const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS)
  const why = (e: unknown, what: string) => {
    const err = e as Error & { code?: string; cause?: { code?: string; message?: string } }
    // Bun's fetch names the code itself; Node's (undici) says "fetch failed", the code in its cause
    const code = err.code ?? err.cause?.code ?? err.cause?.message
    return err.name === "TimeoutError" ? `${what} within ${FETCH_TIMEOUT_MS} ms` : clean(code ?? err.message)
  }
  let res: Response
  try {
    res = via.unix === undefined ? await fetch(url, { signal }) : await getOverUnix(url, via.unix, signal)
  } catch (e) {
    return { ok: false, answered: false, why: why(signal.aborted ? signal.reason : e, "no answer") }
  }
  const parts: Uint8Array[] = []
  let size = 0
  try {
    // Leaving the loop early cancels the body, which ends the connection.
    for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
      size += chunk.length
      if (size > MAX_ANSWER_BYTES)
        return { ok: false, answered: true, why: `answered more than ${MAX_ANSWER_BYTES / 1024 ** 2} MiB` }
      parts.push(chunk)
    }
  } catch (e) {
    const reason = signal.aborted ? signal.reason : e
    return { ok: false, answered: true, why: `answered ${res.status} but ${why(reason, "sent no whole body")}` }
  }
  return { ok: true, answered: true, res, text: new TextDecoder().decode(Buffer.concat(parts)) }
}

const NULL_BODY = new Set([101, 103, 204, 205, 304])

/**
 * GET `url`'s path over the unix socket `path` with node:http, as a Response whose body streams in (cancelling it
 * ends the connection). Not fetch's `{ unix }`: only Bun's fetch has it, and Node's went to localhost:80 instead.
 */
async function getOverUnix(url: string, path: string, signal: AbortSignal): Promise<Response> {
  const [{ request }, { Readable }] = await Promise.all([import("node:http"), import("node:stream")])
  const { pathname, search, host } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: path, path: pathname + search, headers: { host }, agent: false, signal },
      (im) => {
        try {
          const headers = new Headers()
          for (let i = 0; i + 1 < im.rawHeaders.length; i += 2) headers.append(im.rawHeaders[i]!, im.rawHeaders[i + 1]!)
          const status = im.statusCode ?? 0
          const body = NULL_BODY.has(status) ? null : (Readable.toWeb(im) as ReadableStream<Uint8Array>)
          resolve(new Response(body, { status, statusText: im.statusMessage, headers }))
        } catch (e) {
          im.destroy()
          reject(e)
        }
      },
    )
    req.once("error", reject)
    req.end()
  })
}

/**
 * Prints `first` once (`once`), or redraws every second until Ctrl-C (exit 0): `next()` is the next report, or
 * an Error whose message is shown instead while the target is away (the watch goes on). The HTTP hub's view too.
 */
export async function redraw<T>(
  first: T,
  once: boolean,
  draw: (report: T, width: number) => string,
  next: () => Promise<T | Error>,
): Promise<number> {
  if (once) {
    process.stdout.write(draw(first, Infinity))
    return 0
  }
  const tty = process.stdout.isTTY === true
  const { pause } = untilStopped("status")
  let report: T | Error = first
  for (;;) {
    const text =
      report instanceof Error
        ? `slotbus status: ${report.message}; trying again every second (Ctrl-C stops)\n`
        : draw(report, tty ? (process.stdout.columns ?? 120) : Infinity)
    // On a terminal each frame replaces the last; into a pipe or file they follow one another, like vmstat 1.
    process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`)
    if (await pause(EVERY_MS)) return 0
    report = await next()
  }
}
