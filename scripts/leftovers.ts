// `bun scripts/leftovers.ts bun test` (what `npm test` runs): runs the command as one test run and then fails when
// that run left something behind on this machine, whichever feature's tests did it: a process, a bound slotbus
// socket, a region in /dev/shm, a simulated host (test/support/hosts.ts: its netns, veth pair, nats-servers), a
// temporary folder named slotbus-…. Only what this run made counts, not what another slotbus app or another
// checkout's tests on the machine hold: the command runs with SLOTBUS_TEST_RUN=<a fresh token> in its environment,
// which every process it starts inherits, and a socket or region is this run's when one of those processes holds it.
// Without a command it checks for the run $SLOTBUS_TEST_RUN names (unset: processes started from this checkout).
import { randomBytes } from "node:crypto"
import {
  appendFileSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  unlinkSync,
} from "node:fs"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { stripVTControlCharacters } from "node:util"

const repo = join(import.meta.dir, "..")
const command = process.argv.slice(2)
const token = command.length ? randomBytes(8).toString("hex") : process.env.SLOTBUS_TEST_RUN

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

/** When the `npm test` this runs under began (the start of the shell npm runs the script in), in ms since the epoch. */
function parentStartMs(): number {
  try {
    const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8")
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]) // field 22, starttime, in clock ticks
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1])
    return Number.isFinite(ticks) && Number.isFinite(btime) ? (btime + ticks / 100) * 1000 : 0
  } catch {
    return 0
  }
}

const read = (path: string): string | null => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return null // exited while we looked, or another uid's (then not this run's either)
  }
}

interface Proc {
  cmd: string
  ours: boolean
}

/** Every process, whether it is this run's, and who holds what: "socket:[inode]" and paths, each to its pids. */
function processes() {
  const mine = ancestors()
  const procs = new Map<number, Proc>()
  const holders = new Map<string, number[]>()
  for (const pid of readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number)) {
    const argv = read(`/proc/${pid}/cmdline`)?.split("\0")
    if (argv === undefined || mine.has(pid)) continue
    const cmd = argv.join(" ").trim()
    const run = /(?:^|\0)SLOTBUS_TEST_RUN=([^\0]*)/.exec(read(`/proc/${pid}/environ`) ?? "")?.[1]
    // a child a test started with an environment of its own has no token: then its arguments say where from (not
    // its program: in a clone, the bun every process runs is the checkout's own node_modules/bun)
    const ours = run === undefined ? argv.slice(1).join(" ").includes(`${repo}/`) : run === token
    procs.set(pid, { cmd, ours })
    const held = (target: string) => holders.get(target)?.push(pid) ?? holders.set(target, [pid])
    try {
      held(readlinkSync(`/proc/${pid}/cwd`))
      for (const fd of readdirSync(`/proc/${pid}/fd`)) held(readlinkSync(`/proc/${pid}/fd/${fd}`))
    } catch {}
  }
  return { procs, holders }
}

/** What this run left now; a test's last child may still be exiting, so the caller looks again for a moment. */
function leftovers(runStart: number): string[] {
  const found: string[] = []
  const { procs, holders } = processes()
  const heldByRun = (target: string) => holders.get(target)?.some((pid) => procs.get(pid)?.ours) ?? false
  const heldByOthers = (target: string) => holders.get(target)?.some((pid) => !procs.get(pid)?.ours) ?? false
  const madeDuringRun = (path: string) => {
    const s = statSync(path, { throwIfNoEntry: false })
    return (s?.birthtimeMs || s?.mtimeMs || 0) >= runStart - 1000
  }

  for (const [pid, p] of procs) if (p.ours) found.push(`process ${pid}: ${p.cmd.slice(0, 160)}`)

  // Abstract unix sockets named by slotbus (hubs, topics, contests, wake sockets), and the portable backend's socket
  // files (§13.2): bound means a process holds them; this run's if one of its processes does.
  const socketPaths: string[] = []
  for (const line of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/)
    const path = cols[7]
    if (!path?.startsWith("@slotbus") && !path?.includes("/slotbus")) continue
    if (heldByRun(`socket:[${cols[6]}]`)) found.push(`socket ${path}`)
    else socketPaths.push(path)
  }

  // the portable backend's regions are sb.<16 hex> for a moment, then unlinked (docs/PROTOCOL.md §13.3)
  for (const f of readdirSync("/dev/shm")) {
    const path = `/dev/shm/${f}`
    // the flight recorders' directory (docs/PROTOCOL.md §16.1) stays, as the socket directory does; a file in it is
    // its live front's (a process of the run is reported as such) or a dead one's, swept by the next bus that listens
    if (/^slotbus-\d+$/.test(f)) continue
    if (!/slotbus|^sb\.[0-9a-f]{16}$/i.test(f)) continue
    if (heldByRun(path) || (!heldByOthers(path) && madeDuringRun(path))) found.push(path)
  }

  // test/support/hosts.ts's names: netns slotbus-<pid>-<n>, veth sb<pid>-<n>a (bench events --remote: sbbench-<pid>,
  // sbb<pid % 100000>a), made by the test process named, or one of an earlier run that was killed: not those of a
  // process still running that is not this run's. `bun test/support/hosts.ts --clean` removes those of dead ones.
  const othersLive = (pid: number) => procs.has(pid) && !procs.get(pid)!.ours
  for (const ns of existsSync("/run/netns") ? readdirSync("/run/netns") : []) {
    const pid = /^(?:slotbus-(\d+)-\d+|sbbench-(\d+))$/.exec(ns)
    if (pid && !othersLive(Number(pid[1] ?? pid[2]))) found.push(`netns ${ns}`)
  }
  for (const link of readdirSync("/sys/class/net")) {
    const pid = /^(?:sb(\d+)-\d+a|sbb(\d+)a)$/.exec(link)
    if (pid && !othersLive(Number(pid[1] ?? pid[2]))) found.push(`link ${link}`)
  }

  // Every temporary folder a test makes is named slotbus-…, and each test removes its own: one made since this run
  // began that no other process works in (its cwd, an open file, a socket bound in it) was left by this run. A
  // user's socket directory, slotbus-<uid> or its fallback slotbus-<uid>.<n> (docs/PROTOCOL.md §13.2), is made by the
  // first slotbus process of that uid and kept, as the flight recorders' directory in /dev/shm is: not a leftover;
  // nor is a door directory, slotbus-door-<uid> or slotbus-door-<uid>.<n>, which stays for the next hub (§1.1).
  for (const d of readdirSync(tmpdir(), { withFileTypes: true })) {
    if (!d.isDirectory() || !d.name.startsWith("slotbus-") || /^slotbus-(door-)?\d+(\.\d+)?$/.test(d.name)) continue
    const path = join(tmpdir(), d.name)
    const inside = (p: string) => p === path || p.startsWith(`${path}/`)
    const usedByOthers =
      [...holders.keys()].some((t) => inside(t) && heldByOthers(t)) || socketPaths.some((s) => inside(s))
    if (!usedByOthers && madeDuringRun(path)) found.push(`folder ${path}`)
  }

  return found
}

/**
 * Removes the socket files in this uid's socket directory (docs/PROTOCOL.md §13.2: whichever of its places are
 * there) that were made since the run
 * began and that no socket is bound to any more, in any network namespace: what the run's processes killed with -9
 * or SIGSTOP left (their names are made unique by a pid or a random suffix, so no later bind replaces them; ~800 a
 * run). Lock files stay: the protocol never unlinks one. Returns how many it removed.
 */
function sweepDeadSocketFiles(runStart: number): number {
  const uid = process.geteuid!()
  const dirs = process.env.SLOTBUS_SOCKET_DIR
    ? [process.env.SLOTBUS_SOCKET_DIR]
    : [
        `/tmp/slotbus-${uid}`,
        join(userInfo().homedir, ".slotbus"),
        ...readdirSync("/tmp")
          .filter((f) => f.startsWith(`slotbus-${uid}.`) && /^\d+$/.test(f.slice(`slotbus-${uid}.`.length)))
          .map((f) => `/tmp/${f}`),
      ]
  const bound = new Set<string>()
  const namespaces = new Set<string>()
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const ns = readlinkSync(`/proc/${pid}/ns/net`)
      if (namespaces.has(ns)) continue
      const table = readFileSync(`/proc/${pid}/net/unix`, "utf8")
      namespaces.add(ns)
      for (const line of table.split("\n").slice(1)) {
        const path = line.trim().split(/\s+/)[7]
        if (path?.startsWith("/")) bound.add(path)
      }
    } catch {} // exited while we looked, or another uid's
  }
  let removed = 0
  const ours = (d: string) => {
    const s = lstatSync(d, { throwIfNoEntry: false })
    return s?.isDirectory() === true && s.uid === uid
  }
  for (const [dir, name] of dirs.flatMap((d) => (ours(d) ? readdirSync(d).map((n) => [d, n] as const) : []))) {
    const path = join(dir, name)
    try {
      const s = lstatSync(path)
      if (!s.isSocket() || s.uid !== process.geteuid!() || s.mtimeMs < runStart - 1000 || bound.has(path)) continue
      unlinkSync(path)
      removed++
    } catch {} // gone meanwhile
  }
  return removed
}

/**
 * What the run printed, passed through as it comes and read line by line: each failed test ("(fail) name", as bun
 * test prints it) with the lines printed before it, and bun's closing counts. A CI log shows only its tail, so the
 * failures are printed again at the end.
 */
const BEFORE_FAIL = 30
const recent: string[] = []
const failures: string[][] = []
const counts = { pass: -1, fail: -1, passLines: 0 }

const named = new Set<string>()
let listing = false // bun lists the failed tests again after "N tests failed:", each once more

function readLine(line: string) {
  const plain = stripVTControlCharacters(line)
  if (/^\d+ tests? failed:$/.test(plain)) listing = true
  else if (!plain.startsWith("(fail) ")) listing = false
  else if (!listing && !named.has(plain)) {
    named.add(plain)
    failures.push([...recent, plain])
  }
  if (/^\(pass\) /.test(plain)) counts.passLines++
  const total = /^\s*(\d+) (pass|fail)$/.exec(plain)
  if (total) counts[total[2] as "pass" | "fail"] = Number(total[1])
  recent.push(plain)
  if (recent.length > BEFORE_FAIL) recent.shift()
}

async function passThrough(from: ReadableStream<Uint8Array>, to: NodeJS.WriteStream) {
  const decoder = new TextDecoder()
  let partial = ""
  for await (const chunk of from) {
    if (!to.write(chunk)) await new Promise((r) => to.once("drain", r))
    const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n")
    partial = lines.pop() ?? ""
    for (const line of lines) readLine(line)
  }
  if (partial) readLine(partial)
}

let code = 0
let runStart = parentStartMs()
if (command.length) {
  runStart = Date.now()
  const run = Bun.spawn(command, {
    stdio: ["inherit", "pipe", "pipe"],
    env: { ...process.env, SLOTBUS_TEST_RUN: token },
  })
  await Promise.all([passThrough(run.stdout, process.stdout), passThrough(run.stderr, process.stderr)])
  code = await run.exited
  // the fixtures the run's test files share (test/support/native/pack.ts's tarball) are the run's, made once for all
  rmSync(join(tmpdir(), `slotbus-run-${token}`), { recursive: true, force: true })
}

let found = leftovers(runStart)
for (let i = 0; i < 20 && found.length; i++) {
  await Bun.sleep(100)
  found = leftovers(runStart)
}
if (found.length) console.error(`the tests left ${found.length} thing(s) behind:\n  ${found.join("\n  ")}`)
else
  console.log(
    "leftovers: none (processes of this run, and the slotbus sockets, /dev/shm regions, simulated hosts and slotbus-… temporary folders they made)",
  )

if (command.length) {
  const swept = sweepDeadSocketFiles(runStart)
  if (swept) console.log(`leftovers: removed ${swept} socket file(s) no socket is bound to, left by killed processes`)
  // the failures again, last: to this output, or (.ci/run, which runs more than one stage) to the file it names
  const reprint = failures.length
    ? [
        `=== ${failures.length} failed test(s), each with the ${BEFORE_FAIL} lines printed before it ===`,
        ...failures.flatMap((lines, i) => [`--- ${i + 1} of ${failures.length} ---`, ...lines]),
        "=== end of the failed tests ===",
        "",
      ].join("\n")
    : ""
  if (process.env.SLOTBUS_FAILURES_TO) appendFileSync(process.env.SLOTBUS_FAILURES_TO, reprint)
  else if (reprint) console.error(reprint)
  // bun's closing counts, or the tests it named where it ended without them
  const pass = counts.pass >= 0 ? counts.pass : counts.passLines
  const fail = counts.fail >= 0 ? counts.fail : failures.length + (code !== 0 && !failures.length ? 1 : 0)
  console.log(`run: ${pass} passed, ${fail} failed`)
}
process.exit(code || (found.length ? 1 : 0))
