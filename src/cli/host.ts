// The prelude of `slotbus ls`, `top` and `requests` (ls.ts, top.ts, requests.ts): one parser for the three, each
// command's own options, the records' clock, and a mistake as one line and exit 2.
import { HOST_OPTIONS, monoNow } from "./host-view.ts"
import { ls } from "./ls.ts"
import { CliProblem, help, parse, runCommand } from "./prelude.ts"
import { requests } from "./requests.ts"
import { top } from "./top.ts"

/** Runs `slotbus ls|top|requests`; the exit code. */
export function runHostCli(
  command: "ls" | "top" | "requests",
  argv: string[],
  print: (text: string) => void = console.log,
): Promise<number> {
  return runCommand(command, async () => {
    const options = { ...HOST_OPTIONS, help: { type: "boolean", short: "h" } } as const
    const parsed = parse({ args: argv, allowPositionals: true, options }, (m) => new CliProblem(m))
    if (parsed.values.help) return help(USAGE[command])
    for (const option of Object.keys(parsed.values))
      if (!TAKES[command].includes(option))
        throw new CliProblem(`--${option} is not an option of this command; ${USAGE[command]}`)
    const most = command === "ls" ? 0 : 1
    if (parsed.positionals.length > most)
      throw new CliProblem(
        `${most === 0 ? "no argument" : "one bus name at most"}, got ${parsed.positionals.join(" ")}`,
      )
    const mono = await monoNow()
    if (command === "ls") return ls(parsed.values.json === true, print)
    const args = { ...parsed, mono, print }
    return command === "requests" ? requests(args) : top(args)
  })
}

/** The options each command takes (one parser for the three, so that the others are refused here). */
const TAKES: Record<"ls" | "top" | "requests", string[]> = {
  ls: ["help", "json"],
  top: ["help", "once"],
  requests: ["help", "json", "slow", "limit", "pid"],
}

const USAGE = {
  ls: "usage: slotbus ls [--json]: every bus, topic, contest and front election on this host",
  top: "usage: slotbus top [bus] [--once]: per bus its rate, latency per worker and slowest requests, every second",
  requests: "usage: slotbus requests <bus> [--slow <ms>] [--limit <n>] [--pid <front pid>] [--json]",
}
