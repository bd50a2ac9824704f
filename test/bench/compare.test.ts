// `slotbus bench compare`: its usage errors, a ref that is no commit, and a short real run of HEAD against this
// tree: a table row per measure (and CPU per request for real work), exit 1 exactly when a line says something got
// worse, and no worktree left.
import { expect, test } from "bun:test"
import { readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { main } from "../../bench/compare/cli.ts"
import { usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"
import { findNode, NODE_INSTALL } from "../support/runtime/node.ts"

const repo = join(import.meta.dir, "..", "..")
const leftWorktrees = () => readdirSync(tmpdir()).filter((f) => f.startsWith("slotbus-compare-"))
const worktrees = async () => (await run(["git", "worktree", "list"], { cwd: repo })).stdout
const node = findNode()
if (!node) console.log(`bench compare's node measure is not run: no Node >= 26.1 here (${NODE_INSTALL})`)

usageErrors("compare", main, [
  [],
  ["a", "b", "c"],
  ["main", "--rounds", "0"],
  ["main", "--seconds", "-1"],
  ["main", "--only", "core,nope"],
  ["main", "--only", "realwork,"],
  ["main", "--what", "1"],
  ["main", "--rounds"],
])

test("a ref that is not a commit is an error naming it, and leaves no worktree", async () => {
  const before = await worktrees()
  const r = await run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "compare", "no-such-ref-4f2a"], {
    cwd: repo,
  })
  expect(r.code).toBe(2)
  expect(r.stderr).toContain("no-such-ref-4f2a is not a commit of this repository")
  expect(await worktrees()).toBe(before)
})

test("HEAD against this tree: the ref built in a worktree (for Node too), a row per measure, exit 1 only with a WORSE line, nothing left", async () => {
  const before = await worktrees()
  const left = leftWorktrees()
  const r = await run(
    [
      process.execPath,
      join(repo, "bin", "slotbus.ts"),
      "bench",
      "compare",
      "HEAD",
      "--rounds",
      "1",
      "--seconds",
      "0.3",
      "--only",
      `core,events,realwork,buses${node ? ",node" : ""}`,
    ],
    { cwd: repo, timeoutMs: 240_000 },
  )
  expect([0, 1]).toContain(r.code)
  const out = r.stdout
  expect(out).toContain("# this work tree against HEAD (")
  for (const m of [
    "core 64 B, 1 in flight",
    "core 64 B, 32 in flight",
    "core 64 KiB, 1 in flight",
    "core 64 KiB, 32 in flight",
    "events round trip, 64 B",
    "buses: A of 1, 64 B, fresh idle others",
    "buses: A of 2, 64 B, fresh idle others",
    "buses: A of 4, 64 B, fresh idle others",
    "real work slotbus RPC, page",
    "real work bus.fetch, page",
    "real work slotbus RPC, cached",
    "real work bus.fetch, cached",
    ...(node ? ["node ↔ node 64 B, 1 in flight", "node ↔ node 64 B, 32 in flight"] : []),
  ]) {
    const row = out.split("\n").find((l) => l.startsWith(`| ${m} |`))
    expect(row).toBeDefined()
    expect(row!.split("|").length).toBe(9) // measure, old and new rates, ratio, old and new p50, ratio
  }
  for (const m of [
    "real work slotbus RPC, page",
    "real work bus.fetch, page",
    "real work slotbus RPC, cached",
    "real work bus.fetch, cached",
  ]) {
    const cpu = out.split("\n").filter((l) => l.startsWith(`| ${m} |`))[1] // the CPU table's, after the first table's
    expect(cpu?.split("|").length).toBe(6) // measure, old and new CPU per request, ratio
  }
  const worse = out.split("\n").filter((l) => l.startsWith("WORSE by more than 10%"))
  expect(r.code).toBe(worse.length > 0 ? 1 : 0)
  if (worse.length === 0) expect(out).toContain("nothing got more than 10% worse")
  expect(r.stderr).toContain("building HEAD")
  expect(await worktrees()).toBe(before)
  expect(leftWorktrees()).toEqual(left)
}, 300_000)
