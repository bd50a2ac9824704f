// `slotbus call <bus> <path> [body]`: one request to the workers of a bus on this host, through the bus's control
// socket (docs/PROTOCOL.md §14; same user only), its answer printed. Needs nothing from the app: every SlotBus opens
// the socket when it listens.
import { ControlCallError, controlCall } from "../core/internal.ts"
import { CliProblem, help, parse, runCommand } from "./prelude.ts"
import { stdinBytes, stdoutSink } from "../runtime/index.ts"

const USAGE = `usage: slotbus call <bus> <path> [body] [-X method] [-H name:value]... [-i] [--timeout ms]

Sends one request to the workers of the bus <bus> of this host (this user's only), as bus.fetch would,
and prints the answer's body on stdout (-i: the status line and headers first). The body is the third
argument, or stdin when it is "-". Without -X the method is POST with a body, GET without.

  -X, --method m       the HTTP method
  -H, --header n:v     a request header (repeatable)
  -i, --include        print "HTTP <status>" and the answer's headers before the body
      --timeout ms     the request's deadline on the bus (default: the bus's own)

Exit codes: 0 an answer below 400; 1 an answer of 400 or more (its status on stderr); 2 a usage mistake;
3 no answer: no such bus, another user's bus, no worker, a timeout, a worker that died mid-call, a handler
that threw (RemoteError: as bus.fetch, which has no answer to give then).`

const OPTIONS = {
  method: { type: "string", short: "X" },
  header: { type: "string", short: "H", multiple: true },
  include: { type: "boolean", short: "i" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const

const usage = (problem: string) => new CliProblem(problem, 2, USAGE)

/** Runs `slotbus call …`; resolves with the exit code. */
export function runCallCli(argv: string[]): Promise<number> {
  return runCommand("call", () => call(argv))
}

async function call(argv: string[]): Promise<number> {
  const { values, positionals } = parse({ args: argv, allowPositionals: true, options: OPTIONS }, usage)
  if (values.help) return help(USAGE)
  const [bus, path, bodyArg, ...extra] = positionals
  if (!bus || !path) throw usage("name the bus and the path")
  if (extra.length > 0) throw usage(`unexpected ${extra.join(" ")} (quote a body with spaces)`)
  if (!path.startsWith("/")) throw usage(`the path starts with "/": ${path}`)
  const headers: [string, string][] = []
  for (const h of values.header ?? []) {
    const colon = h.indexOf(":")
    if (colon <= 0) throw usage(`-H takes name:value, got ${h}`)
    headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()])
  }
  let timeoutMs: number | undefined
  if (values.timeout !== undefined) {
    timeoutMs = Number(values.timeout)
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000)
      throw usage(`--timeout takes whole milliseconds from 1 to 600000, got ${values.timeout}`)
  }
  const body =
    bodyArg === undefined ? undefined : bodyArg === "-" ? await stdinBytes() : new TextEncoder().encode(bodyArg)
  const method = values.method ?? (body === undefined ? "GET" : "POST")

  const out = stdoutSink()
  let status: number
  try {
    const answer = await controlCall(bus, { method, path, headers, body, timeoutMs })
    status = answer.status
    if (values.include) {
      out.write(`HTTP ${answer.status}\n`)
      for (const [k, v] of answer.headers) out.write(`${k}: ${v}\n`)
      out.write("\n")
    }
    for await (const chunk of answer.body) {
      out.write(chunk)
      await out.flush()
    }
    await out.flush()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EPIPE") return 0 // whoever read stdout stopped (| head): done
    await out.flush()
    if (e instanceof ControlCallError)
      throw new CliProblem(`${e.message} (${e.type})`, e.type === "BadRequest" || e.type === "TooLarge" ? 2 : 3)
    if (e instanceof TypeError) throw usage(e.message) // a bad bus name
    throw e
  }
  if (status >= 400) throw new CliProblem(`the bus "${bus}" answered ${status}`, 1)
  return 0
}
