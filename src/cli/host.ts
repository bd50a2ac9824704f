// The prelude of `slotbus ls`, `top` and `requests` (ls.ts, top.ts, requests.ts): one set of options for the three,
// the records' clock, and a mistake as one line and exit 2.
import { HOST_OPTIONS, monoNow } from "./host-view.ts"
import { ls } from "./ls.ts"
import { CliProblem, parse, runCommand } from "./prelude.ts"
import { requests } from "./requests.ts"
import { top } from "./top.ts"

/** Runs `slotbus ls|top|requests`; the exit code. */
export function runHostCli(
  command: "ls" | "top" | "requests",
  argv: string[],
  print: (text: string) => void = console.log,
): Promise<number> {
  return runCommand(command, async () => {
    const parsed = parse({ args: argv, allowPositionals: true, options: HOST_OPTIONS }, (m) => new CliProblem(m))
    const mono = await monoNow()
    if (command === "ls") return ls(parsed.values.json === true, print)
    const args = { ...parsed, mono, print }
    return command === "requests" ? requests(args) : top(args)
  })
}
