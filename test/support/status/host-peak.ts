// Runs `slotbus ls|top|requests` in this process and prints what it cost, for test/status/host-hostile.test.ts:
//   bun test/support/status/host-peak.ts <command> [args…]
// prints {"code":…,"read":<bytes read by read(2) during the command, /proc/self/io rchar>,"peak":<VmHWM bytes>}.
import { readFileSync } from "node:fs"
import { runHostCli } from "../../../src/cli/host.ts"

const field = (file: string, re: RegExp) => Number(re.exec(readFileSync(file, "utf8"))?.[1])
const rchar = () => field("/proc/self/io", /^rchar:\s+(\d+)$/m)

const [command, ...args] = process.argv.slice(2)
if (command !== "ls" && command !== "top" && command !== "requests")
  throw new Error("usage: host-peak.ts ls|top|requests …")
const before = rchar()
const code = await runHostCli(command, args, () => {})
const read = rchar() - before
console.log(JSON.stringify({ code, read, peak: field("/proc/self/status", /^VmHWM:\s+(\d+) kB$/m) * 1024 }))
