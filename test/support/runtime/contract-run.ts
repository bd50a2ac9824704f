// Runs the runtime contract's cases (contract-cases.ts) in this process and prints one JSON object of what each
// found ({ threw } where it threw): `node contract-run.ts <libslotbus>`, the Node side of test/runtime/runtime.test.ts
// (Node strips the types of this file, the cases and src/runtime unbundled, as a Node app's loader would).
import * as rt from "../../../src/runtime/index.ts"
import { cases } from "./contract-cases.ts"

const found: Record<string, unknown> = {}
for (const [name, check] of Object.entries(cases))
  try {
    found[name] = await check(rt, process.argv[2]!)
  } catch (e) {
    found[name] = { threw: String((e as Error)?.stack ?? e) }
  }
console.log(JSON.stringify(found))
process.exit(0) // the long sleep's timer
