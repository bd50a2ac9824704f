// A worker process that only writes output, for test/kit/worker-logs.test.ts. Modes (argv[2]):
//   hello               one line on stdout and one on stderr naming its instance (SLOTBUS_INSTANCE), then idles
//   hostile <once>      terminal escapes, invalid UTF-8, a 100 kB line, a line after it and an unterminated last
//                       line, then kill -9 of itself; with the file <once> present (a restart) it only idles
//   flood <n> <once>    n numbered 200-byte lines on stdout as fast as the pipe takes them, then "flood end", idles
//   gated-flood <n> <gate>  the same once the file <gate> exists
//   spam                numbered 200-byte lines for good, as fast as the pipe takes them (a worker stuck logging)
// Every mode exits once the front that started it is gone.
import { existsSync, writeFileSync } from "node:fs"

const [mode, a, b] = process.argv.slice(2)
// a plain process, not a slotbus worker: it leaves once its front is gone (kill -9 of the front ends a test)
const front = process.ppid
setInterval(() => process.ppid !== front && process.exit(0), 100)
const instance = process.env.SLOTBUS_INSTANCE
const idle = () => setInterval(() => {}, 1 << 30)
const firstRun = (once: string | undefined) => {
  if (!once || existsSync(once)) return false
  writeFileSync(once, "")
  return true
}

if (mode === "hello") {
  process.stdout.write(`hello from instance ${instance}\n`)
  process.stderr.write(`complaint from instance ${instance}\n`)
  idle()
} else if (mode === "hostile") {
  if (firstRun(a)) {
    process.stdout.write("\x1b]0;pwned\x07\x1b[2Jcolour \x1b[31mred\x1b[0m\n")
    process.stdout.write(Buffer.from([0xff, 0xfe, 0x20, 0x62, 0x69, 0x6e, 0x0a])) // "\xff\xfe bin\n"
    process.stdout.write(`${"a".repeat(100_000)}\n`)
    process.stdout.write("after the long line\n")
    process.stderr.write("last words")
    process.kill(process.pid, "SIGKILL")
  }
  idle()
} else if (mode === "flood") {
  if (firstRun(b)) flood(Number(a))
  idle()
} else if (mode === "gated-flood") {
  const gate = setInterval(() => {
    if (!existsSync(b!)) return
    clearInterval(gate)
    flood(Number(a))
  }, 20)
  idle()
} else if (mode === "spam") {
  const pad = "E".repeat(180)
  let i = 0
  const loop = () => {
    let chunk = ""
    for (let k = 0; k < 64; k++) chunk += `spam ${String(i++).padStart(8, "0")} ${pad}\n`
    if (process.stdout.write(chunk)) setImmediate(loop)
    else process.stdout.once("drain", loop)
  }
  loop()
} else throw new Error(`log-worker: unknown mode ${mode}`)

function flood(n: number) {
  const pad = "x".repeat(180)
  for (let i = 0; i < n; i++) process.stdout.write(`flood ${String(i).padStart(8, "0")} ${pad}\n`)
  process.stdout.write("flood end\n")
}
