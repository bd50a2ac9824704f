// The issue's own script (issue 64 item 2; test/repro/fronts/, copied unchanged from the session's shared folder),
// run as it is from the project root: uid 4242 retries binding version 2's election name "\0slotbus.fronts.<name>"
// every 0.5 ms while the leader of two shared fronts is killed with -9. Its verdict counts a try lost when the
// squatter bound that name; since protocol version 3 nobody of the owner's uses it (the election is a socket file in
// the owner's own directory, docs/PROTOCOL.md §1.1), so the squatter always binds it and the defect is judged by
// what the script's header names it: the surviving front leads and its pool runs with its worker, every try.
// On main: "squatter bound: B leader false, pool created, 0 workers" in 1 of 5 tries (12 of 13 in the issue).
import { expect, test } from "bun:test"
import { join } from "node:path"
import { findTool, REPO } from "../support/helpers.ts"

const SCRIPT = join(import.meta.dir, "fronts", "election-race-at-leader-death.ts")
const skip = process.geteuid?.() !== 0 || !findTool("setpriv") || !findTool("python3")

test.skipIf(skip)(
  "the election race at a leader's death: the surviving front leads and runs the pool in every try",
  async () => {
    const p = Bun.spawn([process.execPath, SCRIPT], { cwd: REPO, stdout: "pipe", stderr: "pipe" })
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
    const last = out.trim().split("\n").at(-1) ?? ""
    const verdict = JSON.parse(last) as { tries?: number; results?: string[]; setupFailed?: string }
    expect(verdict.setupFailed ?? null, err.slice(-2000)).toBeNull()
    expect(code === 0 || code === 1).toBe(true)
    expect(verdict.results).toHaveLength(verdict.tries!)
    for (const r of verdict.results!) expect(r).toMatch(/: B leader true, pool running, [1-9]\d* workers$/)
  },
  180_000,
)
