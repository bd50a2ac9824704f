#!/bin/sh
":" //; if command -v bun >/dev/null; then exec bun "$0" "$@"; fi; d=$(dirname "$(readlink -f "$0")")/..; if command -v node >/dev/null && [ -f "$d/dist/cli/entry.js" ]; then exec node --disable-warning=ExperimentalWarning "$d/dist/cli/entry.js" "$@"; fi; echo "slotbus needs Bun >= 1.4 or Node >= 26.9 (with the package's dist/, as npm installs it), and found neither on PATH" >&2; exit 1
// The slotbus command line. Line 2 is for sh, which the shebang starts when the bin runs on its own (npx, a shell, a
// Dockerfile's CMD): it runs this file with bun, or else the package's dist/cli/entry.js with node (every command but
// the bench), or says what it needs. To TypeScript it is a string and a comment.
import { runCli } from "../src/cli/main.ts"

async function run(argv: string[]): Promise<number> {
  if (argv[0] !== "bench") return runCli(argv)
  const { main } = await import("../bench/cli.ts")
  return main(argv.slice(1))
}

process.exit(await run(process.argv.slice(2)))
