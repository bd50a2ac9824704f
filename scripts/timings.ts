// test/timings.json, by which `npm test` (`bun test --parallel=2 --timings=…`) starts the slowest files first: the
// test files it covers are the ones `npm test` runs (package.json's test script, its --path-ignore-patterns), and
// each has its duration in ms from a run. test/timings.test.ts fails when a file is missing or one is listed that
// `npm test` does not run.
//   bun scripts/timings.ts                 what is missing or stale (exit 1 if anything)
//   bun scripts/timings.ts --update        runs the whole of `npm test`'s files and writes the file afresh
//   bun scripts/timings.ts --update FILE…  runs those files only and merges their durations in (e.g. the missing
//                                          ones: `--update --missing`), dropping entries for files that are gone
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const repo = join(import.meta.dir, "..")
const TEST_FILE = /(\.test|_test|\.spec|_spec)\.(ts|tsx|js|jsx|mjs|cjs|mts|cts)$/

interface TestScript {
  /** The --timings file, relative to the repo. */
  timings: string
  /** The --path-ignore-patterns globs. */
  ignore: string[]
  /** Its --timeout and --parallel flags, to run files as it does. */
  flags: string[]
}

/** What package.json's test script passes to `bun test`. */
export function testScript(pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"))): TestScript {
  const script: string = pkg.scripts.test
  const args = script.slice(script.indexOf("bun test ") + "bun test ".length).split(/\s+/)
  const value = (a: string) => a.slice(a.indexOf("=") + 1).replace(/^'(.*)'$/, "$1")
  const timings = args.find((a) => a.startsWith("--timings="))
  if (!timings) throw new Error(`package.json's test script passes no --timings=<file>: ${script}`)
  return {
    timings: value(timings),
    ignore: args.filter((a) => a.startsWith("--path-ignore-patterns=")).map(value),
    flags: [
      ...(args.includes("--timeout") ? ["--timeout", args[args.indexOf("--timeout") + 1]!] : []),
      ...args.filter((a) => a.startsWith("--parallel")),
    ],
  }
}

/** The test files `npm test` runs, relative to the repo, sorted. */
export function suiteFiles(ignore = testScript().ignore, root = repo): string[] {
  const skip = ignore.map((p) => new Bun.Glob(p))
  return [...new Bun.Glob("**/*").scanSync({ cwd: root })]
    .filter((f) => TEST_FILE.test(f) && !f.startsWith("node_modules/") && !skip.some((g) => g.match(f)))
    .sort()
}

/** The durations a timings file holds, by file. */
export function readTimings(path: string): Record<string, number> {
  if (!existsSync(path)) return {}
  return (JSON.parse(readFileSync(path, "utf8")) as { files?: Record<string, number> }).files ?? {}
}

/** Why a timings file does not fit the suite: files without a duration, and durations of files it does not run. */
export function timingsProblems(timed: Record<string, number>, files: string[]): string[] {
  const run = new Set(files)
  return [
    ...files.filter((f) => !(f in timed)).map((f) => `${f} has no duration`),
    ...Object.keys(timed)
      .filter((f) => !run.has(f))
      .map((f) => `${f} is listed, but npm test runs no such file (moved, gone or ignored)`),
  ]
}

function write(path: string, timed: Record<string, number>) {
  const files = Object.fromEntries(Object.entries(timed).sort(([a, x], [b, y]) => y - x || a.localeCompare(b)))
  writeFileSync(path, `${JSON.stringify({ version: 1, files }, null, 2)}\n`)
}

/** Runs `only` (all of the suite when empty) as `npm test` does and writes the durations, merged for a part. */
async function update(only: string[]): Promise<number> {
  const script = testScript()
  const path = join(repo, script.timings)
  const files = suiteFiles(script.ignore)
  const kept = only.length ? readTimings(path) : {}
  const dir = mkdtempSync(join(tmpdir(), "timings-run-")) // not slotbus-…: the run it times would call it a leftover
  try {
    const fresh = join(dir, "timings.json")
    write(fresh, {})
    // through scripts/leftovers.ts as npm test: one run, so the files that share a fixture make it once (the tarball)
    const cmd = [process.execPath, join(repo, "scripts/leftovers.ts"), process.execPath, "test", ...script.flags]
    cmd.push(`--timings=${fresh}`, "--update-timings")
    for (const p of script.ignore) cmd.push(`--path-ignore-patterns=${p}`)
    cmd.push(...only.map((f) => `./${f}`))
    const code = await Bun.spawn(cmd, { cwd: repo, stdio: ["ignore", "inherit", "inherit"] }).exited
    const measured = readTimings(fresh)
    const timed = { ...kept, ...measured }
    for (const f of Object.keys(timed)) if (!files.includes(f)) delete timed[f]
    write(path, timed)
    const left = timingsProblems(timed, files)
    console.log(`${script.timings}: ${Object.keys(measured).length} files timed, ${Object.keys(timed).length} listed`)
    for (const p of left) console.log(`  ${p}`)
    if (code !== 0) console.log(`bun test exited ${code}: the durations are written all the same`)
    return left.length ? 1 : code
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(args: string[]): Promise<number> {
  const { timings, ignore } = testScript()
  const timed = readTimings(join(repo, timings))
  if (args[0] === "--update") {
    if (args[1] !== "--missing") return update(args.slice(1))
    const missing = suiteFiles(ignore).filter((f) => !(f in timed))
    if (missing.length) return update(missing)
    console.log(`${timings}: no file is missing`)
    return 0
  }
  const problems = timingsProblems(timed, suiteFiles(ignore))
  for (const p of problems) console.log(p)
  if (problems.length) console.log("fix: bun scripts/timings.ts --update (or --update --missing)")
  return problems.length ? 1 : 0
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)))
