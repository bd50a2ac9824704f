#!/bin/sh
":" //; if command -v bun >/dev/null; then exec bun "$0" "$@"; fi; if command -v node >/dev/null; then exec node --disable-warning=ExperimentalWarning --input-type=module -e 'import { existsSync, realpathSync } from "node:fs"; const entry = new URL("../dist/cli/entry.js", "file://" + realpathSync(process.argv[1])); if (!existsSync(entry)) { console.error("slotbus: no dist/ here (a clone: run it with bun, or npm pack it); found no bun on PATH"); process.exit(1) } await import(entry)' "$0" "$@"; fi; echo "slotbus needs Bun >= 1.4 or Node >= 26.9, and found neither on PATH" >&2; exit 1
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
