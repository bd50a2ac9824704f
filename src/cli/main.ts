// The commands of `slotbus` but the bench, which bin/slotbus.ts runs under Bun: the dispatcher, on Bun and on Node
// alike (a Node team's `npx slotbus ls` runs dist/cli/entry.js, bin/slotbus.ts's sh line picks it).
import { readFileSync } from "node:fs"

export const USAGE = `usage: slotbus <command> [options]

commands:
  bench         measure round trips through slotbus and the alternatives on this machine
                (slotbus bench --help for its options)
  bench soak    the kill -9 soak: workers killed and restarted at random, every answer checked
                (slotbus bench soak --seconds 60 [--workers 4]; --help for the rest)
  bench leases  lease contests vs flock, Atomics and Redis (slotbus bench leases --help)
  bench events  pub/sub topics vs NATS, Redis, process.send and BroadcastChannel (--help)
  bench stdio   the stdio bus vs a direct pipe and the MCP SDK client (slotbus bench stdio --help)
  bench rpc     RPC calls (bus.remote) vs tinypool, piscina and process.send (slotbus bench rpc --help)
  bench stream  streamed answers vs whole ones and Bun's own HTTP server: first chunk, 64 MiB (--help)
  bench remote  workers over NATS vs shared memory, raw nats.js and HTTP keep-alive (--help)
  bench realwork  a ~2 ms page and a 5 MiB stream behind a front: slotbus RPC, bus.fetch, Worker threads,
                a fetch proxy; req/s, p50/p99, CPU per request of each process (--help)
  bench fronts  one front against several on one port (reusePort, shared), over one pool (--help)
  bench buses   each bus's round trip in a front with 1, 2, 4, 8 buses, Bun and Node workers (--help)
  bench carry   carrying an answer behind a front, 8 ways, against a direct server: CPU per request (--help)
  bench node    an Express front in Node 26: inline, piscina, node:cluster, slotbus nodeHandler/RPC/call (--help)
  bench compare this work tree against a git ref, one interleaved run: slotbus bench compare main (--help)
  hub           run the HTTP hub: slotbus hub --port 3200 [--host 127.0.0.1] [--token-file path]
  status        what an app's buses, topics and contests (serveStatus), or a hub, are doing, redrawn every second:
                slotbus status [http://127.0.0.1:3200 | unix:/path/status.sock] [--once]
  stdio         run a stdio bus: slotbus stdio --config bus.json [--listen unix:/tmp/bus.sock]
                or bridge to one: slotbus stdio connect unix:/tmp/bus.sock
  tail          print a topic's events as they pass: slotbus tail <topic> [type] [key=value]... [--json]
  call          one request to a running bus's workers: slotbus call <bus> <path> [body] [-X m] [-H n:v] [-i]
  ls            every bus, topic and contest on this host, no app's help: slotbus ls [--json]
  top           per bus: rate, latency per worker, slowest requests, every second: slotbus top [bus] [--once]
  requests      a bus's in-flight and recent requests from its flight recorder:
                slotbus requests <bus> [--slow <ms>] [--limit <n>] [--pid <front pid>] [--json]

runtimes: every command runs under Bun; under Node >= 26.9 with no Bun on PATH, every one but bench

  -h, --help      this text
  -v, --version   the version of slotbus`

/** Runs `slotbus <argv>` (bench aside): the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case "bench":
      process.stderr.write(
        "slotbus bench runs under Bun (it measures Bun and Node peers from there): bunx slotbus bench, or npx bun x slotbus bench\n",
      )
      return 2
    case "hub":
      return (await import("./hub.ts")).runHubCli(rest)
    case "status": // any serveStatus target; a hub's URL (or none: the hub at :3200) gets the hub's own view
      return (await import("./status.ts")).runStatusCli(rest)
    case "stdio":
      return (await import("./stdio.ts")).runStdioCli(rest)
    case "tail":
      return (await import("./tail.ts")).runTailCli(rest)
    case "call":
      return (await import("./call.ts")).runCallCli(rest)
    case "ls":
    case "top":
    case "requests":
      return (await import("./host.ts")).runHostCli(command, rest)
    case "-v":
    case "--version": {
      const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
      process.stdout.write(`${version}\n`)
      return 0
    }
    case undefined:
    case "-h":
    case "--help":
    case "help":
      process.stdout.write(`${USAGE}\n`)
      return command === undefined ? 2 : 0
    default:
      process.stderr.write(`slotbus: unknown command "${command}"\n\n${USAGE}\n`)
      return 2
  }
}
