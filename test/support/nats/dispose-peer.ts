// A topic member across hosts that disposes of its topic when told, for the tests of what a topic's disposal lets
// go (test/nats/dispose.test.ts); runs under Bun as it is and under Node built. Usage: dispose-peer.ts <topic> <url>
// Prints "ready" once the topic is open and this process its host's bridge. On a "dispose" line: prints
// "disposing", awaits topic[Symbol.asyncDispose](), then prints "disposed <n>", n its TCP connections to the
// server still established. It never calls process.exit: a socket or timer left behind keeps it running.
import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import { createInterface } from "node:readline"
import { Topic } from "../../../src/events/index.ts"
import { nats } from "../../../src/nats/index.ts"

const [name, url] = process.argv.slice(2)
if (!name || !url) throw new Error("usage: dispose-peer.ts <topic> <nats url>")
const port = Number(new URL(url).port)

/** This process's TCP connections to `port` established now: its socket fds' inodes in /proc/net/tcp, state 01. */
function established(): number {
  const mine = new Set<string>()
  for (const fd of readdirSync("/proc/self/fd")) {
    const m = /^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/self/fd/${fd}`))
    if (m) mine.add(m[1]!)
  }
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 9 && parseInt(f[2]!.split(":")[1]!, 16) === port && f[3] === "01" && mine.has(f[9]!))
    .length
}
function safeReadlink(p: string): string {
  try {
    return readlinkSync(p)
  } catch {
    return "" // the fd that listed the directory, closed since
  }
}

const topic = await Topic.open(name, { remote: nats(url) })
while (!topic.bridgeStats()?.bridging) await new Promise((r) => setTimeout(r, 10))
console.log("ready")
const input = createInterface({ input: process.stdin })
for await (const line of input) {
  if (line !== "dispose") continue
  console.log("disposing")
  await topic[Symbol.asyncDispose]()
  console.log(`disposed ${established()}`)
  break
}
input.close()
process.stdin.destroy()
