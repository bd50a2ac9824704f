// The core, topic, lease and conformance suites again, on the portable backend (docs/PROTOCOL.md §13, what macOS runs),
// each in a child `bun test` of its own with SLOTBUS_PLATFORM=posix and a socket directory of its own (one test a
// suite: each has bun's deadline to itself, and a failure names its suite). Left out, each for its reason:
// the uid suites (another uid cannot reach the private socket directory, §13.2), and the suites of NATS across
// simulated hosts and of durable topics (a simulated host shares this host's filesystem, so its socket and lock
// files would meet ours). The single-host NATS suites stay: the bridge election's socket file and the local/cluster
// contest markers' lock files are in the socket directory there (§11.4, §12.5). The topic ring's SPIN model is left out too: it checks
// docs/model/topic.pml, which no backend runs, so a second run checked the same thing again (154 s of the rerun's
// 370 s under load).
import { expect, test } from "bun:test"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { REPO, run } from "../support/helpers.ts"

const LEFT_OUT = new Set([
  "core/hub/uid.test.ts",
  "core/ops/fronts-uid.test.ts",
  "events/uid.test.ts",
  "events/keeper-window.test.ts",
  "leases/uid.test.ts",
  "leases/mode-uid.test.ts",
  "events/hosts.ci.test.ts",
  "events/durable.test.ts",
  "events/durable-hosts.test.ts",
  "leases/hosts.test.ts",
  "events/chaos-hosts.ci.test.ts",
  "events/model.ci.test.ts",
  "leases/chaos-hosts.ci.test.ts",
])

const SUITES = { core: "core", events: "topic", leases: "lease", conformance: "conformance" }

/** The suite's test files, in its folders too, as `bun test` is given them (from the checkout). */
const filesOf = (room: string) =>
  readdirSync(join(REPO, "test", room), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts") && !LEFT_OUT.has(`${room}/${f}`))
    .sort()
    .map((f) => `./test/${room}/${f}`)

test("every suite left out names a test file that exists (a moved one would run here)", () => {
  const all = Object.keys(SUITES).flatMap((room) =>
    readdirSync(join(REPO, "test", room), { recursive: true, encoding: "utf8" }).map((f) => `${room}/${f}`),
  )
  expect([...LEFT_OUT].filter((f) => !all.includes(f))).toEqual([])
})

/** Processes still running with the rerun's socket directory in their environment, as "pid: command line". */
function stragglers(dir: string): string[] {
  const mark = `\0SLOTBUS_SOCKET_DIR=${dir}\0`
  const found: string[] = []
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!`\0${readFileSync(`/proc/${pid}/environ`, "latin1")}`.includes(mark)) continue
      found.push(`${pid}: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim()}`)
    } catch {} // exited while we looked, or not ours to read
  }
  return found
}

for (const [room, suite] of Object.entries(SUITES))
  test(`the ${suite} suite (test/${room}) passes on the portable backend`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `slotbus-posix-${room}-`))
    let left: string[] = []
    try {
      const env = { ...process.env, SLOTBUS_PLATFORM: "posix", SLOTBUS_SOCKET_DIR: dir }
      const r = await run([process.execPath, "test", ...filesOf(room)], { cwd: REPO, env })
      const out = r.stdout + r.stderr
      const lines = out.split("\n")
      const failed = lines.filter((l) => l.startsWith("(fail)"))
      // what each failure printed before its "(fail)" line, so a CI log says why
      for (const f of new Set(failed))
        console.log(lines.slice(Math.max(0, lines.indexOf(f) - 40), lines.indexOf(f) + 1).join("\n"))
      // and how a run that ended otherwise ended (a run under load once exited 139 with no failed test)
      if (r.code !== 0 && failed.length === 0) console.log(lines.slice(-60).join("\n"))
      expect({ code: r.code, failed }).toEqual({ code: 0, failed: [] })
      expect(out).toMatch(/\n\s*[1-9]\d* pass\n(\s*\d+ skip\n)?\s*0 fail\n/)
    } finally {
      // A process of the rerun still exiting would make the directory again after it is removed (a CI run once found
      // it left behind): wait for them, then name any that outlived the rerun.
      for (let i = 0; i < 100 && (left = stragglers(dir)).length; i++) await Bun.sleep(100)
      for (const l of left) process.kill(Number(l.split(":")[0]), "SIGKILL")
      rmSync(dir, { recursive: true, force: true })
    }
    expect(left).toEqual([])
  }, 1_800_000)
