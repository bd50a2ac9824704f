// `slotbus hub --port 3200 [--host 127.0.0.1] [--token-file path]`: runs a hub until SIGINT or SIGTERM.
import { parseArgs } from "node:util"
import { superviseWorkers } from "../core/index.ts"
import { createHub } from "./hub.ts"

const USAGE = `usage: slotbus hub [--port 3200] [--host 127.0.0.1] [--token-file path] [--timeout-ms 30000] [--max-body-bytes 8388608]
                   [--spawn "bun worker.ts" [--instances 4]]

Runs the HTTP hub: workers join with hubWorker("http://<host>:<port>", name) and read the token from the token file.
--spawn keeps that many worker processes running (restarted with backoff when they die; they get
SLOTBUS_HUB_URL and SLOTBUS_HUB_TOKEN_FILE in their environment).`

/** Runs the hub CLI with `argv` (the arguments after "hub"); resolves once the hub has stopped. */
export async function runHubCli(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "3200" },
      host: { type: "string", default: "127.0.0.1" },
      "token-file": { type: "string" },
      "timeout-ms": { type: "string" },
      "max-body-bytes": { type: "string" },
      spawn: { type: "string" },
      instances: { type: "string", default: "1" },
      help: { type: "boolean", short: "h" },
    },
  })
  if (values.help) return void console.log(USAGE)
  const int = (v: string | undefined, what: string) => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${what} must be a non-negative integer, got ${v}\n${USAGE}`)
    return n
  }
  const hub = await createHub({
    port: int(values.port, "port"),
    hostname: values.host,
    tokenFile: values["token-file"],
    timeoutMs: int(values["timeout-ms"], "timeout-ms"),
    maxRequestBodyBytes: int(values["max-body-bytes"], "max-body-bytes"),
  })
  console.log(`slotbus hub listening on ${hub.url}`)
  console.log(`token file: ${hub.tokenFile}`)
  const workers = values.spawn === undefined ? null : superviseWorkers(null, {
    command: values.spawn,
    instances: int(values.instances, "instances"),
    env: { ...process.env, SLOTBUS_HUB_URL: hub.url, SLOTBUS_HUB_TOKEN_FILE: hub.tokenFile },
  })
  workers?.on("restart", (i, r) => console.log(`worker ${i.index} exited; restarting in ${r.delayMs} ms`))
  workers?.on("failed", (f) => console.error(`workers failed: ${f.reason}; no more restarts`))
  const { promise: stop, resolve } = Promise.withResolvers<void>()
  process.once("SIGINT", resolve)
  process.once("SIGTERM", resolve)
  await stop
  await workers?.stop()
  await hub.close()
}
