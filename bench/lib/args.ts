// The options the round-trip benches share (stdio, rpc): --quick, --json, --time ms, --rounds n, --only list.

export interface RunArgs {
  ms: number
  rounds: number
  /** --only's value as given, or null. */
  only: string | null
  json: boolean
}

/** The parsed options, or the exit code after printing help (0) or what was wrong with the usage (2). */
export function parseRunArgs(argv: string[], usage: string): RunArgs | number {
  const out: RunArgs = { ms: 1000, rounds: 3, only: null, json: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "-h" || a === "--help") return (void console.log(usage), 0)
    else if (a === "--quick") (out.ms = 300), (out.rounds = 1)
    else if (a === "--json") out.json = true
    else if (a === "--time" || a === "--only" || a === "--rounds") {
      const v = argv[++i]
      if (v === undefined) return (void console.error(`${a} needs a value\n${usage}`), 2)
      if (a === "--time") out.ms = Number(v)
      else if (a === "--rounds") out.rounds = Number(v)
      else out.only = v
    } else return (void console.error(`unknown option ${a}\n${usage}`), 2)
  }
  if (!Number.isInteger(out.ms) || out.ms < 50)
    return (void console.error(`--time takes whole milliseconds ≥ 50\n${usage}`), 2)
  if (!Number.isInteger(out.rounds) || out.rounds < 1 || out.rounds > 99)
    return (void console.error(`--rounds takes a whole number from 1 to 99\n${usage}`), 2)
  return out
}
