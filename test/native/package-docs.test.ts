// The docs a user gets in the package resolve there (issue 68 item 5): every relative link in every markdown file
// the tarball ships points at a file (or folder) the tarball holds, and the docs that name repository files the
// package leaves out (tests, benches, the perf notebook) say so; the README and docs/api.md name none (issue 65).
// The file list is `npm pack`'s own (--dry-run: the files field applied, nothing built). Mutations at the end prove the checks notice.
import { expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { dirname, join, normalize } from "node:path"
import { REPO } from "../support/helpers.ts"
import { NODE_FFI_DEFAULT } from "../../src/runtime/errors.ts"
import { runOk } from "../support/native/pack.ts"

const SAYS_SO = "in slotbus's source repository, not in this package"
/** Paths named in prose that are not slotbus's: Bun's own source (docs/perf is not shipped, but keep it honest). */
const NOT_OURS = new Set(["src/bun.js/event_loop/GarbageCollectionController.zig"])

let packed: string[] | undefined
async function packedFiles(): Promise<string[]> {
  if (packed) return packed
  const out = await runOk(["npm", "pack", "--dry-run", "--json", "--ignore-scripts"], REPO, process.env, 120_000)
  packed = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path)
  return packed
}

/** Markdown without its fenced code blocks (their contents are code, not links). */
const prose = (md: string) => md.replace(/^```[\s\S]*?^```/gm, "")

/** The relative links of `md` (at `file`) that resolve to nothing in `files`. */
export function brokenLinks(file: string, md: string, files: readonly string[]): string[] {
  const held = new Set(files)
  const folders = new Set(
    files.flatMap((f) =>
      f
        .split("/")
        .slice(0, -1)
        .map((_, i, a) => a.slice(0, i + 1).join("/")),
    ),
  )
  const out: string[] = []
  for (const [, href] of prose(md).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(href!) || href!.startsWith("#")) continue
    const target = normalize(join(dirname(file), href!.split("#")[0]!)).replace(/\/$/, "")
    if (!held.has(target) && !folders.has(target)) out.push(href!)
  }
  return out
}

/** Paths `md` names (test/…, bench/…, docs/…) that are neither in `files` nor in the repository (`repo`). */
function cited(md: string): string[] {
  return [...prose(md).matchAll(/(?<![\w./-])((?:test|bench|docs|scripts|src|csrc|examples|python|bin)\/[\w./-]*\w)/g)]
    .map((m) => m[1]!)
    .filter((p) => !NOT_OURS.has(p))
}

test("every relative link in the package's markdown resolves inside the package", async () => {
  const files = await packedFiles()
  const docs = files.filter((f) => f.endsWith(".md"))
  expect(docs).toContain("README.md")
  expect(docs).toContain("docs/api.md")
  const broken = docs.flatMap((f) =>
    brokenLinks(f, readFileSync(join(REPO, f), "utf8"), files).map((href) => `${f}: ${href}`),
  )
  expect(broken).toEqual([])
}, 180_000)

test("the README and docs that name repository files the package leaves out say so, and every file they name exists", async () => {
  const files = await packedFiles()
  const inRepo = (await runOk(["git", "ls-files"], REPO)).split("\n")
  const named = (p: string, list: readonly string[]) => list.some((f) => f.startsWith(p)) // csrc/lease_* names a family
  const silent: string[] = []
  const missing: string[] = []
  for (const f of files.filter((f) => f === "README.md" || f === "CHANGELOG.md" || /^docs\/.*\.md$/.test(f))) {
    const md = readFileSync(join(REPO, f), "utf8")
    const outside = cited(md).filter((p) => !named(p, files))
    missing.push(...outside.filter((p) => !named(p, inRepo)).map((p) => `${f}: ${p}`))
    if (outside.length > 0 && !md.replace(/\s+/g, " ").includes(SAYS_SO)) silent.push(`${f}: ${outside.join(", ")}`)
  }
  expect(missing).toEqual([])
  expect(silent).toEqual([])
}, 180_000)

/** The shipped README's and docs/api.md's dead links and the paths they name that the package (`files`) leaves out. */
export function unshippedNames(file: string, md: string, files: readonly string[]): string[] {
  const outside = cited(md).filter((p) => !files.some((f) => f.startsWith(p)))
  return [...brokenLinks(file, md, files).map((href) => `link ${href}`), ...outside]
}

test("the README and docs/api.md link to and name only files the package ships", async () => {
  const files = await packedFiles()
  expect(files).toContain("README.md")
  expect(files).toContain("docs/api.md")
  const found = ["README.md", "docs/api.md"].flatMap((f) =>
    unshippedNames(f, readFileSync(join(REPO, f), "utf8"), files).map((p) => `${f}: ${p}`),
  )
  expect(found).toEqual([])
}, 180_000)

// package.json said node >=26.1.0 (26.1–26.8 run only with --experimental-ffi, which npx slotbus and a pool's
// workers do not pass) while the README, docs/api.md, the CLI and the import error said 26.9
test("package.json's engines.node and every Node version the docs, the CLI and the examples state are the one Node that runs it unflagged", () => {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { engines: { node: string } }
  const unflagged = NODE_FFI_DEFAULT.join(".")
  expect(pkg.engines.node).toBe(`>=${unflagged}.0`)
  const files = [
    "README.md",
    "docs/api.md",
    "docs/platforms.md",
    "bin/slotbus.ts",
    "src/cli/main.ts",
    "src/other-runtime.cjs",
    "src/other-runtime.mjs",
    "examples/node/README.md",
    "examples/express/README.md",
    "examples/fastify/README.md",
  ]
  const stated = files.flatMap((f) =>
    [...readFileSync(join(REPO, f), "utf8").matchAll(/Node\*{0,2} ?(?:≥|>=) ?(\d+(?:\.\d+)*)/g)].map(
      (m) => `${f}: ${m[1]}`,
    ),
  )
  expect(stated.length).toBeGreaterThan(5)
  expect(stated.filter((s) => !s.endsWith(`: ${unflagged}`))).toEqual([])
})

/** What of `md` is too long to read: lines over 200 characters outside tables, table cells over 300. */
export function tooLong(md: string): string[] {
  const problems: string[] = []
  for (const [i, line] of md.split("\n").entries()) {
    if (!line.startsWith("|")) {
      if (line.length > 200) problems.push(`line ${i + 1}: ${line.length} characters`)
      continue
    }
    for (const cell of line.slice(1, -1).split(/(?<!\\)\|/))
      if (cell.trim().length > 300) problems.push(`line ${i + 1}: a cell of ${cell.trim().length} characters`)
  }
  return problems
}

test("the README stays within 350 lines of at most 200 characters, table cells within 300: the detail lives in docs/", () => {
  const md = readFileSync(join(REPO, "README.md"), "utf8")
  expect(md.trimEnd().split("\n").length).toBeLessThanOrEqual(350)
  expect(tooLong(md)).toEqual([])
})

test("the length check notices a long line and a long cell, and leaves a long table row of short cells alone", () => {
  const row = `| ${"a".repeat(250)} | ${"b".repeat(250)} |`
  expect(tooLong(`${"x".repeat(201)}\n${row}\n| ${"c".repeat(301)} |`)).toEqual([
    "line 1: 201 characters",
    "line 3: a cell of 301 characters",
  ])
})

test("the shipped-names check notices a dead link and a path the package leaves out, even said to be elsewhere", () => {
  const files = ["README.md", "docs/api.md", "docs/model/README.md", "src/http/README.md", "csrc/test/hostile.c"]
  const md = `tested (test/core/fuzz, in ${SAYS_SO}); notes in docs/perf/figures.md; [gone](docs/gone.md)`
  expect(unshippedNames("README.md", md, files)).toEqual([
    "link docs/gone.md",
    "test/core/fuzz",
    "docs/perf/figures.md",
    "docs/gone.md",
  ])
  expect(
    unshippedNames("README.md", "see docs/model/ and [h](src/http/README.md), csrc/test/hostile.c", files),
  ).toEqual([])
})

test("the link check notices a link to a file the package leaves out, and accepts links within it", () => {
  const files = ["README.md", "docs/api.md", "docs/model/README.md"]
  expect(brokenLinks("README.md", "[perf](docs/perf/figures.md#the-soak)", files)).toEqual([
    "docs/perf/figures.md#the-soak",
  ])
  expect(brokenLinks("docs/api.md", "[r](../README.md) [m](model/) [s](#x) [w](https://x.y/z)", files)).toEqual([])
  expect(brokenLinks("docs/api.md", "```\n[not a link](nowhere.md)\n```", files)).toEqual([])
})
