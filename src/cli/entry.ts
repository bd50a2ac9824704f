// The command line's entry where no Bun runs it: `node dist/cli/entry.js <command>`, as bin/slotbus.ts's sh line
// starts it for a Node team (the package's dist/ is JavaScript: Node strips no types under node_modules).
import { runCli } from "./main.ts"

// a Node without node:ffi (older than 26.9) is told so in one line: UnsupportedRuntimeError's, no stack
const code = await runCli(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`slotbus: ${e.name}: ${e.message}\n`)
  return 1
})
process.exit(code)
