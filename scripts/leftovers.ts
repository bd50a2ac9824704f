// Run after the test suite (`npm test`): fails when the tests left something behind on this machine, whichever
// feature's tests did it: a region in /dev/shm, a bound slotbus socket, a process started from this checkout, a
// simulated host (test/support/hosts.ts: its netns, veth pair, nats-servers), a temporary folder named slotbus-….
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const repo = join(import.meta.dir, "..")

/** This process and the ones that started it (`bash /path/to/.ci/run`, npm, …): not leftovers. */
function ancestors(): Set<number> {
  const seen = new Set<number>()
  for (let pid = process.pid; pid > 1 && !seen.has(pid); ) {
    seen.add(pid)
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
    } catch {
      break
    }
  }
  return seen
}

/**
 * When the `npm test` this runs under began (the start of the shell npm runs the script in), in ms since the epoch;
 * 0 when it cannot be read. A slotbus-… folder untouched since before then was left by an earlier run that was killed
 * (a machine restarted mid-run), not by these tests.
 */
function runStartMs(): number {
  try {
    const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8")
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]) // field 22, starttime, in clock ticks
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1])
    return Number.isFinite(ticks) && Number.isFinite(btime) ? (btime + ticks / 100) * 1000 : 0
  } catch {
    return 0
  }
}
const runStart = runStartMs()

/** What is left now; a test's last child may still be exiting, so the caller looks again for a moment. */
function leftovers(): string[] {
  const found: string[] = []

  // the portable backend's regions are sb.<16 hex> for a moment, then unlinked (docs/PROTOCOL.md §13.3)
  for (const f of readdirSync("/dev/shm")) if (/slotbus|^sb\.[0-9a-f]{16}$/i.test(f)) found.push(`/dev/shm/${f}`)

  // Abstract unix sockets named by slotbus (hubs, topics, contests, wake sockets): bound means a process holds them.
  for (const line of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
    const path = line.trim().split(/\s+/)[7]
    // and the portable backend's socket files (§13.2): bound, a process holds them
    if (path?.startsWith("@slotbus") || path?.includes("/slotbus")) found.push(`socket ${path}`)
  }

  // Processes whose command line names this checkout (a test's child that outlived its test).
  const mine = ancestors()
  for (const pid of readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number)) {
    if (mine.has(pid)) continue
    let cmd = ""
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim()
    } catch {
      continue // exited while we looked
    }
    if (cmd.includes(`${repo}/`)) found.push(`process ${pid}: ${cmd.slice(0, 160)}`)
    // A simulated host's nats-server (its --server_name is slotbus-<test pid>-<n>-a or -b).
    // and a test's or bench's own on 127.0.0.1 (test/support/nats.ts, bench/remote)
    else if (/^\S*nats-server .*(--server_name slotbus-\d+-\d+-[ab]\b|-a 127\.0\.0\.1 -p \d+)/.test(cmd))
      found.push(`process ${pid}: ${cmd.slice(0, 160)}`)
    // bench/events/remote.ts's servers (slotbus bench events --remote)
    else if (/^\S*(nats-server .*--cluster_name sbbench-\d+|redis-server .*--bind 10\.214\.)/.test(cmd))
      found.push(`process ${pid}: ${cmd.slice(0, 160)}`)
  }

  // test/support/hosts.ts's names: netns slotbus-<pid>-<n>, veth sb<pid>-<n>a, folder slotbus-hosts-<pid>-<n>-….
  // `bun test/support/hosts.ts --clean` removes those of dead test processes.
  for (const ns of existsSync("/run/netns") ? readdirSync("/run/netns") : [])
    if (/^slotbus-\d+-\d+$/.test(ns) || /^sbbench-\d+$/.test(ns)) found.push(`netns ${ns}`)
  for (const link of readdirSync("/sys/class/net"))
    if (/^sb\d+-\d+a$/.test(link) || /^sbb\d+a$/.test(link)) found.push(`link ${link}`)
  // and every other temporary folder a test makes is named slotbus-…: each test removes its own
  for (const d of readdirSync(tmpdir(), { withFileTypes: true })) {
    if (!d.isDirectory() || !d.name.startsWith("slotbus-")) continue
    const path = join(tmpdir(), d.name)
    if ((statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) < runStart - 1000) {
      console.warn(`leftovers: removed ${path}, untouched since before this run began (an earlier run was killed)`)
      rmSync(path, { recursive: true, force: true })
    } else found.push(`folder ${path}`)
  }

  return found
}

let found = leftovers()
for (let i = 0; i < 20 && found.length; i++) {
  await Bun.sleep(100)
  found = leftovers()
}
if (found.length) {
  console.error(`the tests left ${found.length} thing(s) behind:\n  ${found.join("\n  ")}`)
  process.exit(1)
}
console.log(
  "leftovers: none (/dev/shm, slotbus sockets, processes from this checkout, simulated hosts, slotbus-… folders in the temp dir)",
)
