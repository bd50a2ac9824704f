// scripts/leftovers.ts, the last step of `npm test`: it reports what its run of the suite left behind, and not what
// another slotbus app on the machine holds while the suite runs.
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { alive, REPO, run, spawn, stopAll, until } from "./support/helpers.ts"

/**
 * The environment of a check these tests run, and of the apps beside it: this run's but a runner's
 * SLOTBUS_FAILURES_TO (.ci/run's: the deliberate failures here are not CI's), with a temporary folder and a socket
 * directory of the test's own. The suite runs beside a check: a folder one of its tests has just made, or a socket
 * file it is binding, must neither count as the check's leftover nor be swept by it.
 */
function ownEnv(): Record<string, string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "SLOTBUS_FAILURES_TO"))
  return { ...env, TMPDIR: join(dir, "tmp"), SLOTBUS_SOCKET_DIR: join(dir, "sockets") } as Record<string, string>
}
/** An app of its own beside the check: the check's folders, without its run's token. */
function appEnv(): Record<string, string> {
  const { SLOTBUS_TEST_RUN: _, ...env } = ownEnv()
  return env
}

const SCRIPT = join(REPO, "scripts", "leftovers.ts")
let dir = "" // outside the checkout, and not named slotbus-…: the check must not count it for its name
const ends: (() => void)[] = []
// Each test starts three or four bun processes one after another: on a loaded 2-vCPU machine that alone took
// 5-16 s (bun's default 5 s per test failed 4 of 5 runs under 6 CPU burners), so each test waits as long as the
// deadlines inside it add up to.
setDefaultTimeout(120_000)

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sb-leftovers-"))
  mkdirSync(join(dir, "tmp"))
  mkdirSync(join(dir, "sockets"), { mode: 0o700 }) // a socket directory must be its user's, 0700 (PROTOCOL §13.2)
})
afterEach(async () => {
  for (const end of ends.splice(0)) end()
  await stopAll()
  rmSync(dir, { recursive: true, force: true })
})

const imports = `
import { SlotBus, SlotWorker } from "${REPO}/src/index.ts"
import { Topic } from "${REPO}/src/events/index.ts"
import { Contest } from "${REPO}/src/leases/index.ts"
`
/** Listens on a bus with a worker, opens a topic and a contest, all named `name`, and says "ready". */
const holdAll = `
const bus = await SlotBus.listen(name)
const worker = await SlotWorker.connect(name, () => ({ status: 200, body: "ok" }))
const topic = await Topic.open(name)
const contest = await Contest.open(name)
console.log("ready")
setInterval(() => {}, 1000)
`

/** The leftovers check around `script` (run with this bun as the test run), from the checkout as npm test runs it. */
async function checkAround(script: string) {
  const file = join(dir, "run.ts")
  writeFileSync(file, script)
  const r = await run([process.execPath, SCRIPT, process.execPath, file], {
    cwd: REPO,
    env: ownEnv(),
    timeoutMs: 90_000,
  })
  return { code: r.code, out: r.stdout + r.stderr }
}

// a bus's name is a socket file in the user's socket directory (PROTOCOL version 3), /proc/net/unix lists its path
const bound = (name: string) => readFileSync("/proc/net/unix", "utf8").includes(`/slotbus.${name}\n`)

test("a slotbus app running beside the suite (a hub and worker, a topic, a contest) is not a leftover of it", async () => {
  const app = join(dir, "app.ts")
  writeFileSync(app, `${imports}\nconst name = "app-" + process.pid\n${holdAll}`)
  const p = spawn([process.execPath, app], { cwd: dir, env: appEnv() })
  await p.waitLine(/^ready$/, 20_000)
  expect(bound(`app-${p.pid}`)).toBe(true)

  // the run makes (and ends) a topic and a folder of its own while the app holds its names
  const r = await checkAround(`${imports}
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
const t = await Topic.open("run-" + process.pid)
const d = mkdtempSync(tmpdir() + "/slotbus-leftovers-run-")
await t.close()
rmSync(d, { recursive: true })
`)
  expect(r.out).toContain("leftovers: none")
  expect(r.code).toBe(0)
  expect(bound(`app-${p.pid}`)).toBe(true) // and the check took nothing of the app's away
})

test("what the run left is reported: a process it started, the names that process holds, a folder", async () => {
  const pidFile = join(dir, "pid")
  const folderFile = join(dir, "folder")
  const child = join(dir, "child.ts")
  writeFileSync(child, `${imports}\nconst name = "left-" + process.pid\n${holdAll}`)
  ends.push(() => {
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : 0
    if (pid && alive(pid)) process.kill(pid, "SIGKILL")
    if (existsSync(folderFile)) rmSync(readFileSync(folderFile, "utf8"), { recursive: true, force: true })
    // its bus's flight recorder file, which a kill -9 leaves (docs/PROTOCOL.md §16.1)
    if (pid) rmSync(`/dev/shm/slotbus-${process.geteuid!()}/left-${pid}.${pid}.rec`, { force: true })
  })
  // a test that forgot to end its child and remove its folder; the child inherits the run's environment
  const r = await checkAround(`
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
writeFileSync("${folderFile}", mkdtempSync(tmpdir() + "/slotbus-leftovers-forgot-"))
const c = Bun.spawn([process.execPath, "${child}"], { stdout: "pipe", stderr: "ignore" })
writeFileSync("${pidFile}", String(c.pid))
const reader = c.stdout.getReader()
while (!new TextDecoder().decode((await reader.read()).value).includes("ready")) {}
process.exit(0)
`)
  const pid = Number(readFileSync(pidFile, "utf8"))
  expect(r.code).toBe(1)
  expect(r.out).toContain(`process ${pid}: ${process.execPath} ${child}`)
  for (const name of [`slotbus.left-${pid}`, `slotbus.topic.left-${pid}`, `slotbus-lease.left-${pid}`])
    expect(r.out).toMatch(new RegExp(`^  socket /\\S*/${name.replaceAll(".", "\\.")}$`, "m"))
  expect(r.out).toContain(`folder ${readFileSync(folderFile, "utf8")}`)
  process.kill(pid, "SIGKILL")
  await until(() => !alive(pid), "the forgotten child exits", 5000)
})

// A CI log shows only its tail: each failed test is printed again at the end, with what was printed before it.
const failing = `
import { expect, test } from "bun:test"
test("passes", () => {})
test("fails for a reason", () => {
  // on stderr, where bun reports the test: stdout is another pipe, which a loaded machine may deliver later
  for (let i = 0; i < 40; i++) console.error("printed before the failure, line " + i)
  expect({ why: "the deliberate reason" }).toEqual({ why: "another" })
})
test("passes after it", () => {})
test("fails as well", () => {
  expect(1).toBe(2)
})
`

test("a failed test is printed again after the run, with the lines before it, and the run's counts last", async () => {
  writeFileSync(join(dir, "deliberate.test.ts"), failing)
  // with two files bun lists the failed tests again at its end, after "2 tests failed:": each is printed once
  writeFileSync(join(dir, "other.test.ts"), `import { test } from "bun:test"\ntest("passes", () => {})\n`)
  const files = ["./deliberate.test.ts", "./other.test.ts"]
  const r = await run([process.execPath, SCRIPT, process.execPath, "test", ...files], {
    cwd: dir,
    env: ownEnv(),
    timeoutMs: 90_000,
  })
  expect(r.code).toBe(1)
  const out = r.stdout + r.stderr
  const again = out.slice(out.indexOf("=== 2 failed test(s)"))
  expect(again.match(/^--- \d+ of \d+ ---$/gm)).toEqual(["--- 1 of 2 ---", "--- 2 of 2 ---"])
  expect(again).toMatch(/\n\(fail\) fails for a reason.*\n--- 2 of 2 ---\n/)
  expect(again).toContain("printed before the failure, line 39")
  expect(again).toContain('"why": "the deliberate reason"')
  expect(again).toMatch(/\(fail\) fails as well.*\n=== end of the failed tests ===/)
  expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("run: 3 passed, 2 failed")
})

test("with SLOTBUS_FAILURES_TO the failures go to that file, for a runner of several stages to print at its end", async () => {
  writeFileSync(join(dir, "deliberate.test.ts"), failing)
  const to = join(dir, "failures.txt")
  const r = await run([process.execPath, SCRIPT, process.execPath, "test", "./deliberate.test.ts"], {
    cwd: dir,
    env: { ...ownEnv(), SLOTBUS_FAILURES_TO: to },
    timeoutMs: 90_000,
  })
  expect(r.code).toBe(1)
  expect(r.stdout + r.stderr).not.toContain("=== 2 failed test(s)")
  expect(readFileSync(to, "utf8")).toMatch(/^=== 2 failed test\(s\)[\s\S]*\(fail\) fails for a reason/)
})

test("the failed tests bun lists again at its end (after 'N tests failed:') are printed once each", async () => {
  // what bun test prints after a long run with failures, as a script of its own (short runs end without the list)
  const file = join(dir, "long-run.ts")
  const lines = ["(pass) one", "why the first failed", "(fail) first [1.00ms]", "(fail) second [2.00ms]", ""]
  lines.push("2 tests failed:", "(fail) first [1.00ms]", "(fail) second [2.00ms]", "", " 1 pass", " 2 fail")
  writeFileSync(file, `console.error(${JSON.stringify(lines.join("\n"))}); process.exit(1)`)
  const r = await run([process.execPath, SCRIPT, process.execPath, file], {
    cwd: dir,
    env: ownEnv(),
    timeoutMs: 90_000,
  })
  const out = r.stdout + r.stderr
  const again = out.slice(out.indexOf("=== 2 failed test(s)"))
  expect(again.match(/^--- \d+ of \d+ ---$/gm)).toEqual(["--- 1 of 2 ---", "--- 2 of 2 ---"])
  expect(again).toContain("why the first failed\n(fail) first [1.00ms]\n--- 2 of 2 ---")
  expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("run: 1 passed, 2 failed")
})

test("the socket files of the run's killed processes are removed; an app's bound one and an older dead one stay", async () => {
  const sockets = join(dir, "sockets")
  const file = (name: string) => join(sockets, `slotbus.${name}`)
  // a dead one from before the run: a bus whose process was killed, its file dated back a minute
  const old = join(dir, "old.ts")
  writeFileSync(
    old,
    `${imports}\nawait SlotBus.listen("before-" + process.pid)\nconsole.log("ready")\nsetInterval(() => {}, 1000)`,
  )
  const before = spawn([process.execPath, old], { cwd: dir, env: appEnv() })
  await before.waitLine(/^ready$/, 20_000)
  await before.kill("SIGKILL")
  const past = new Date(Date.now() - 60_000)
  utimesSync(file(`before-${before.pid}`), past, past)
  ends.push(() => rmSync(file(`before-${before.pid}`), { force: true }))
  // an app beside the suite, bound all along
  const app = join(dir, "app.ts")
  writeFileSync(app, `${imports}\nconst name = "beside-" + process.pid\n${holdAll}`)
  const beside = spawn([process.execPath, app], { cwd: dir, env: appEnv() })
  await beside.waitLine(/^ready$/, 20_000)

  // the run starts a child holding a bus, a topic and a contest, and kills it with -9
  const pidFile = join(dir, "pid")
  const child = join(dir, "child.ts")
  writeFileSync(child, `${imports}\nconst name = "killed-" + process.pid\n${holdAll}`)
  const r = await checkAround(`
import { writeFileSync } from "node:fs"
const c = Bun.spawn([process.execPath, "${child}"], { stdout: "pipe", stderr: "ignore" })
writeFileSync("${pidFile}", String(c.pid))
const reader = c.stdout.getReader()
while (!new TextDecoder().decode((await reader.read()).value).includes("ready")) {}
c.kill(9)
await c.exited
`)
  const killed = Number(readFileSync(pidFile, "utf8"))
  expect(r.out).toContain("leftovers: none")
  expect(r.out).toMatch(/leftovers: removed \d+ socket file\(s\) no socket is bound to/)
  expect(r.code).toBe(0)
  for (const name of [`slotbus.killed-${killed}`, `slotbus.topic.killed-${killed}`, `slotbus-lease.killed-${killed}`])
    expect(existsSync(join(sockets, name))).toBe(false)
  expect(bound(`beside-${beside.pid}`)).toBe(true)
  expect(existsSync(file(`beside-${beside.pid}`))).toBe(true)
  expect(existsSync(file(`before-${before.pid}`))).toBe(true)
})
