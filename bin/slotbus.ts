#!/usr/bin/env bun
// The slotbus command line: `slotbus bench` and `slotbus hub`.

const USAGE = `usage: slotbus <command> [options]

commands:
  bench    measure round trips through slotbus and the alternatives on this machine
           (slotbus bench --help for its options; slotbus bench events: pub/sub topics)
  hub      run the HTTP hub: slotbus hub --port 3200 [--host 127.0.0.1] [--token-file path]

  -h, --help   this text`

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case "bench": {
      if (rest[0] === "events") return (await import("../bench/events/cli.ts")).main(rest.slice(1))
      const { main } = await import("../bench/cli.ts")
      return main(rest)
    }
    case "hub": {
      const { runHubCli } = await import("../src/http/cli.ts")
      await runHubCli(rest)
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

export {}
process.exit(await run(process.argv.slice(2)))
