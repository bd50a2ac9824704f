// The command line's entry where no Bun runs it: `node dist/cli/entry.js <command>`, as bin/slotbus.ts's sh line
// starts it for a Node team (the package's dist/ is JavaScript: Node strips no types under node_modules).
import { runCli } from "./main.ts"

process.exit(await runCli(process.argv.slice(2)))
