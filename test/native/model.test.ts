// docs/model/slotbus.pml, the SPIN model of the slot protocol: checked exhaustively (it must hold), and with
// each known bug put back (SPIN must find it, or the model could not fail). Needs `spin` (Debian package) and gcc.
import { afterAll, beforeAll, expect, test } from "bun:test"
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const MODEL = join(import.meta.dir, "..", "..", "docs", "model", "slotbus.pml")
// Millions of states: well under a minute each on an idle core, more on a busy shared machine.
const TIMEOUT_MS = 240_000

let workDir = ""
beforeAll(() => {
  if (!Bun.which("spin") || !Bun.which("gcc"))
    throw new Error("the model check needs spin and gcc: apt-get install -y spin gcc (.ci/run does)")
  workDir = mkdtempSync(join(tmpdir(), "slotbus-model-"))
})
afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true })
})

async function run(cmd: string[], cwd: string) {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" })
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ])
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited with ${code}:\n${stdout.slice(-2000)}${stderr.slice(-2000)}`)
  return stdout
}

interface Verdict {
  errors: number
  states: number
  report: string
}

/**
 * spin -a generates pan.c, gcc compiles it, pan searches. Each check gets its own directory, since pan writes
 * its trail (the counterexample) next to the model.
 * safety: assertions and invalid end states (deadlocks, lost wake-ups); ltl: that formula, with no fairness
 * assumed (it holds for any scheduler, and costs half the search of pan -f).
 */
async function check(name: string, opts: { defines?: string[]; ltl?: string }): Promise<Verdict> {
  const dir = join(workDir, name)
  mkdirSync(dir)
  copyFileSync(MODEL, join(dir, "slotbus.pml"))
  await run(["spin", ...(opts.defines ?? []).map((d) => `-D${d}`), "-a", "slotbus.pml"], dir)
  const cflags = opts.ltl ? [] : ["-DNOCLAIM", "-DSAFETY"]
  // A bug is found within thousands of states: compiling pan.c fast then beats running it fast.
  const optimize = opts.defines?.some((d) => d.startsWith("BUG_")) ? "-O0" : "-O2"
  await run(["gcc", optimize, ...cflags, "-o", "pan", "pan.c"], dir)
  const report = await run(["./pan", "-m1000000", ...(opts.ltl ? ["-a", "-N", opts.ltl] : [])], dir)
  const errors = report.match(/errors: (\d+)/)
  const states = report.match(/(\d+) states, stored/)
  if (!errors || !states) throw new Error(`pan printed no verdict:\n${report}`)
  return { errors: Number(errors[1]), states: Number(states[1]), report }
}

function expectExhaustiveAndClean(v: Verdict, minStates: number) {
  if (v.errors !== 0) throw new Error(`SPIN found a counterexample in the real model:\n${v.report}`)
  expect(v.report).not.toContain("max search depth too small") // a cut search proves nothing
  expect(v.report).toContain("Full statespace search")
  expect(v.states).toBeGreaterThan(minStates) // a model that shrank by accident is caught here
}

test(
  "the slot protocol model has no reachable assertion failure, deadlock or lost wake-up",
  async () => {
    expectExhaustiveAndClean(await check("safety", {}), 5_000_000)
  },
  TIMEOUT_MS,
)

test(
  "in every run of the model both sides stop: each request answered, cancelled, failed or gone, each slot free",
  async () => {
    // 2 requests, not 3: a tenth of the search (docs/model/README.md has the 3-request run's figures)
    const v = await check("terminates", { ltl: "terminates", defines: ["NREQ=2"] })
    expectExhaustiveAndClean(v, 500_000)
    expect(v.report).toContain("acceptance   cycles 	+")
  },
  TIMEOUT_MS,
)

test.each([
  ["BUG_NO_RECHECK", "invalid end state"],
  ["BUG_WAKER_CLEARS_FUTEX", "invalid end state"],
  ["BUG_TAIL_AFTER_PARKED", "invalid end state"],
  ["BUG_NO_GEN_CHECK", "assertion violated (resp_of[h_i]==h_req[h_i])"],
])(
  "SPIN finds the counterexample when %s is put back",
  async (bug, finding) => {
    const v = await check(bug, { defines: [bug] })
    expect(v.errors).toBeGreaterThan(0)
    expect(v.report).toContain(`pan:1: ${finding}`)
  },
  TIMEOUT_MS,
)
