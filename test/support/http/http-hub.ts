// A hub process for the restart test, run through the CLI entry: bun test/support/http/http-hub.ts --port N [--token-file P]
import { runHubCli } from "../../../src/cli/hub.ts"

process.exit(await runHubCli(process.argv.slice(2)))
