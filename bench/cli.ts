// `slotbus bench …`: one folder per measured feature; this file only picks the folder and loads it when asked.
//   slotbus bench [options]                     bench/slots   request/response round trips against the alternatives
//   slotbus bench soak [options]                bench/soak    the kill -9 soak of request/response
//   slotbus bench soak --production [options]   bench/soak    two fronts, an elastic pool, deploys, kills, a crash bug
//   slotbus bench events|leases|stdio [soak] …  bench/<feature>, each with its own soak
//   slotbus bench rpc [options]                 bench/rpc     RPC calls against tinypool, piscina and process.send
//   slotbus bench stream [options]              bench/stream  streamed answers against whole ones and Bun.serve
//   slotbus bench remote [options]              bench/remote  slotbus over NATS against shared memory, nats.js and HTTP
//   slotbus bench realwork [options]            bench/realwork a ~2 ms page and a 5 MiB stream behind a front, 4 ways
//   slotbus bench fronts [options]              bench/fronts  one front against several on one port (reusePort)
//   slotbus bench carry [options]               bench/carry   carrying an answer behind a front (Bun's, Node's), against direct
//   slotbus bench node [options]                bench/node    an Express front in Node 26: inline, piscina, cluster, slotbus
//   slotbus bench buses [options]               bench/buses   a front with 1, 2, 4 and 8 buses: each bus's round trip vs alone
//   slotbus bench compare <ref> [<ref2>]        bench/compare this tree (or ref2) against a git ref, interleaved
// bench/http (the hub against Bun.serve and a fetch proxy) runs with bun directly: see bench/README.md.

/** Runs `slotbus bench` with the given arguments; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [room, ...rest] = argv
  switch (room) {
    case "soak":
      if (rest.includes("--production")) return (await import("./soak/production.ts")).main(rest)
      return (await import("./soak/soak.ts")).main(rest)
    case "events":
      return (await import("./events/cli.ts")).main(rest)
    case "leases":
      return (await import("./leases/cli.ts")).main(rest)
    case "stdio":
      return (await import("./stdio/cli.ts")).main(rest)
    case "rpc":
      return (await import("./rpc/cli.ts")).main(rest)
    case "stream":
      return (await import("./stream/cli.ts")).main(rest)
    case "remote":
      return (await import("./remote/cli.ts")).main(rest)
    case "realwork":
      return (await import("./realwork/cli.ts")).main(rest)
    case "fronts":
      return (await import("./fronts/cli.ts")).main(rest)
    case "carry":
      return (await import("./carry/cli.ts")).main(rest)
    case "node":
      return (await import("./node/cli.ts")).main(rest)
    case "buses":
      return (await import("./buses/cli.ts")).main(rest)
    case "compare":
      return (await import("./compare/cli.ts")).main(rest)
    default:
      return (await import("./slots/cli.ts")).main(argv)
  }
}
