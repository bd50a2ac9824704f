// Runs a SPIN model (docs/model/*.pml) the way test/native/model.ci.test.ts, test/native/stream-model.ci.test.ts and
// test/events/model.ci.test.ts need: spin -a generates pan.c, gcc compiles it, pan searches. Needs `spin` (Debian
// package) and gcc.
import { expect } from "bun:test"
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { toolSkipReason } from "./tools.ts"

export interface Verdict {
  errors: number
  states: number
  report: string
}

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

/**
 * Why the model checks cannot run here, or null. Without spin (or gcc) they are skipped with the install
 * command, unless SLOTBUS_REQUIRE_TOOLS=1 (.ci/run sets it): then they run and fail, so CI checks every model.
 */
export function spinSkipReason(): string | null {
  return toolSkipReason("spin", "gcc")
}

/** A model checker for one .pml file; open() before the checks, close() after (it owns a temporary folder). */
export class Spin {
  private dir = ""
  constructor(private readonly model: string) {}

  open() {
    if (!Bun.which("spin") || !Bun.which("gcc"))
      throw new Error("the model check needs spin and gcc: apt-get install -y spin gcc (.ci/run does)")
    this.dir = mkdtempSync(join(tmpdir(), "slotbus-model-"))
  }

  close() {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }

  /**
   * Each check gets its own directory, since pan writes its trail (the counterexample) next to the model.
   * safety: assertions and invalid end states (deadlocks, lost wake-ups); ltl: that formula, with no fairness
   * assumed (it holds for any scheduler, and costs half the search of pan -f).
   */
  async check(name: string, opts: { defines?: string[]; ltl?: string; pan?: string[] } = {}): Promise<Verdict> {
    const dir = join(this.dir, name)
    const file = basename(this.model)
    mkdirSync(dir)
    copyFileSync(this.model, join(dir, file))
    await run(["spin", ...(opts.defines ?? []).map((d) => `-D${d}`), "-a", file], dir)
    // COLLAPSE: state vectors compressed, a fraction of the memory for a little more time
    const cflags = opts.ltl ? [] : ["-DNOCLAIM", "-DSAFETY", "-DCOLLAPSE"]
    // A bug is found within thousands of states: compiling pan.c fast then beats running it fast.
    const optimize = opts.defines?.some((d) => d.startsWith("BUG_")) ? "-O0" : "-O2"
    await run(["gcc", optimize, "-w", ...cflags, "-o", "pan", "pan.c"], dir)
    const report = await run(
      ["./pan", "-m1000000", ...(opts.pan ?? []), ...(opts.ltl ? ["-a", "-N", opts.ltl] : [])],
      dir,
    )
    const errors = report.match(/errors: (\d+)/)
    const states = report.match(/(\d+) states, stored/)
    if (!errors || !states) throw new Error(`pan printed no verdict:\n${report}`)
    return { errors: Number(errors[1]), states: Number(states[1]), report }
  }
}

export function expectExhaustiveAndClean(v: Verdict, minStates: number) {
  if (v.errors !== 0) throw new Error(`SPIN found a counterexample in the real model:\n${v.report}`)
  expect(v.report).not.toContain("max search depth too small") // a cut search proves nothing
  expect(v.report).toContain("Full statespace search")
  expect(v.states).toBeGreaterThan(minStates) // a model that shrank by accident is caught here
}
