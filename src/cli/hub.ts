// `slotbus hub --port 3200 [--host 127.0.0.1] [--token-file path] [--nats url [--events-durable]] [--quiet]`: runs a hub until SIGINT or SIGTERM.
import { MissingPackageError, superviseWorkers } from "../core/index.ts"
import { createHub } from "../http/index.ts" // the entry: it registers the NATS transport that --nats needs
import { checkNumber, checkPort, within } from "../kit/index.ts"
import { CliProblem, firstSentence, help, parse, runCommand, untilStopped } from "./prelude.ts"
import { sleep } from "../runtime/index.ts"

const USAGE = `usage: slotbus hub [--port 3200] [--host 127.0.0.1] [--token-file path] [--timeout-ms 30000] [--max-body-bytes 8388608]
                   [--max-held-body-bytes 268435456] [--quiet] [--spawn "<worker command>" [--instances 4]]
                   [--nats nats://host:4222 [--events-durable]]

Runs the HTTP hub: workers join with hubWorker("http://<host>:<port>", name) and read the token from the token file.
--max-held-body-bytes bounds the bytes of request bodies the hub holds at once, read and not yet with a worker:
past it bodies are read no further until some are let go (a body that waited --timeout-ms for room gets 503).
--quiet leaves out the one-line log of worker registrations, evictions and restarts.
--spawn keeps that many worker processes running (restarted with backoff when they die; they get
SLOTBUS_HUB_URL and SLOTBUS_HUB_TOKEN_FILE in their environment); SIGHUP replaces them one at a time, each once
its successor registered (a deploy): the old one gets no new request and is SIGTERMed once it runs none.
SIGTERM or SIGINT stops the hub: new requests get 503, those it has (a body still coming in too) are answered (at
most 10 s), each --spawn worker is SIGTERMed, then the hub closes (workers started elsewhere keep retrying).
Started by npm, npx or bunx (npm run, npx slotbus hub), it stops so too once its parent is gone: npm passes a
SIGTERM to its sh -c alone, which dies of it without passing it on.
--nats takes workers on other hosts too, through that NATS server: they join with
hubWorker(url, name, { nats, token }) (docs/PROTOCOL.md §10).
--events-durable (with --nats) keeps GET /events in a JetStream stream: Last-Event-ID resumes on any hub of the
cluster, and workers on other hosts can app.emit (docs/PROTOCOL.md §11.6).`

const HELP_HINT = `run "slotbus hub --help" for the options`

/** How long a stop (and a reload's retiring of one --spawn worker) waits for what the workers run. */
const DRAIN_TIMEOUT_MS = 10_000

/**
 * Runs the hub CLI with `argv` (the arguments after "hub") until SIGINT or SIGTERM; resolves with the exit
 * code. A bad flag (2) or a hub that cannot start (1) prints one line to stderr.
 */
export function runHubCli(argv: string[]): Promise<number> {
  return runCommand("hub", () => run(argv))
}

async function run(argv: string[]): Promise<number> {
  const { values } = parse(
    {
      args: argv,
      options: {
        port: { type: "string", default: "3200" },
        host: { type: "string", default: "127.0.0.1" },
        "token-file": { type: "string" },
        "timeout-ms": { type: "string" },
        "max-body-bytes": { type: "string" },
        "max-held-body-bytes": { type: "string" },
        quiet: { type: "boolean" },
        nats: { type: "string" },
        "events-durable": { type: "boolean" },
        spawn: { type: "string" },
        instances: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    },
    (m) => new CliProblem(firstSentence(m, HELP_HINT)),
  )
  if (values.help) return help(USAGE)
  // digits become a number; anything else is checked as the string it is, so the message quotes it
  const int = (v: string | undefined, what: string, max?: number, min?: number) =>
    v === undefined
      ? undefined
      : checkNumber(/^\d+$/.test(v) ? Number(v) : v, {
          what: `--${what}`,
          max,
          min,
          error: (p) => new CliProblem(`${p.message}; ${HELP_HINT}`),
        })
  const port = checkPort(/^\d+$/.test(values.port!) ? Number(values.port) : values.port, {
    what: "--port",
    error: (p) => new CliProblem(`${p.message}; ${HELP_HINT}`),
  })
  const instances = int(values.instances ?? "1", "instances", 1024, 1)!
  if (values.instances !== undefined && values.spawn === undefined)
    throw new CliProblem(`--instances counts the workers --spawn starts: give --spawn too; ${HELP_HINT}`)
  const host = values.host!
  let hub
  try {
    hub = await createHub({
      port,
      hostname: host,
      tokenFile: values["token-file"],
      timeoutMs: int(values["timeout-ms"], "timeout-ms"),
      maxRequestBodyBytes: int(values["max-body-bytes"], "max-body-bytes"),
      maxHeldBodyBytes: int(values["max-held-body-bytes"], "max-held-body-bytes"),
      quiet: values.quiet,
      nats: values.nats,
      ...(values["events-durable"] && { eventsDurable: true }),
    })
  } catch (e) {
    if (e instanceof CliProblem) throw e
    // what the app must install first: a setup problem, said as it is (with the install line)
    if (e instanceof MissingPackageError) throw new CliProblem(e.message, 2)
    const err = e as Error & { code?: string }
    if (err.code === "EADDRINUSE")
      throw new CliProblem(`port ${port} on ${host} is in use; stop what holds it, or pick another with --port`, 1)
    throw new CliProblem(`cannot start: ${String(err.message).split("\n")[0]}`, 1)
  }
  // the address it is bound to; a wildcard one is reached from this host at hub.url
  const bound = `http://${host.includes(":") ? `[${host}]` : host}:${hub.port}`
  console.log(`slotbus hub listening on ${bound}`)
  if (bound !== hub.url) console.log(`on every interface; from this host: ${hub.url}`)
  console.log(`token file: ${hub.tokenFile}`)
  let workers: ReturnType<typeof superviseWorkers> | null = null
  try {
    if (values.spawn !== undefined)
      workers = superviseWorkers(null, {
        command: values.spawn,
        instances,
        drainTimeoutMs: DRAIN_TIMEOUT_MS,
        env: { ...process.env, SLOTBUS_HUB_URL: hub.url, SLOTBUS_HUB_TOKEN_FILE: hub.tokenFile },
        log: (line) => console.error(`slotbus hub: ${line}`),
        ready: async (pid, { signal }) => {
          // it registered; or the wait is over (it exited, or past readyTimeoutMs)
          while (!signal.aborted && !hub.health().workers.some((w) => w.pid === pid)) await sleep(10)
        },
        // a reload's old worker gets no new request and is SIGTERMed once it runs none: with or without a handler
        retire: (pid) => hub.retireWorker(pid),
      })
  } catch (e) {
    await hub.close() // its token file goes with it
    throw new CliProblem(`--spawn: ${String((e as Error).message).split("\n")[0]}; check the command`)
  }
  workers?.on("restart", (i, r) => console.log(`worker ${i.index} exited; restarting in ${r.delayMs} ms`))
  // SIGHUP (systemctl reload): every spawned worker replaced surge-first, each once its successor registered
  const reload = () => {
    if (!workers) return console.error("slotbus hub: SIGHUP: no --spawn workers to reload")
    console.log("slotbus hub: SIGHUP: reloading the workers")
    workers.reload().then(
      () => console.log(`slotbus hub: reloaded ${workers.instances.length} workers`),
      (e: Error) => console.error(`slotbus hub: reload failed: ${e.message}`),
    )
  }
  process.on("SIGHUP", reload)
  const { stopped, off } = untilStopped("hub")
  await stopped
  off()
  process.off("SIGHUP", reload)
  // new requests get 503; every worker leaves its routes and finishes what it runs, bodies still coming in included
  // (at most DRAIN_TIMEOUT_MS): a spawned one is then SIGTERMed, one that joined from outside sees its hub close and
  // keeps trying to rejoin
  hub.refuseRequests()
  const drained = performance.now() + DRAIN_TIMEOUT_MS
  await within(hub.retireWorkers(), DRAIN_TIMEOUT_MS)
  // the spawned ones' drain is what is left of those DRAIN_TIMEOUT_MS (a worker stopped with SIGSTOP had 10 s more)
  await workers?.stop({ drainTimeoutMs: Math.max(0, Math.round(drained - performance.now())) })
  await hub.close()
  return 0
}
