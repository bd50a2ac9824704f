// The rooms of src/ and the one direction their imports may run, read from the source text:
//   src/runtime (through runtime/index.ts), src/errors.ts ← src/native ← src/kit (through kit/index.ts)
//   ← src/core (through core/index.ts for features) ← feature folders
// src/runtime, the host's operations (Bun's today), imports nothing of slotbus; nothing outside it names Bun's
// globals or bun:ffi (HOST_RULE).
// A feature never imports another feature or the package entry, except along an edge declared in
// FEATURE_EDGES (through that feature's index.ts, or its internal.ts: what other rooms use and users do not); nothing in src imports bench/, test/ or bin/.
// src/cli, the commands of `slotbus` (one file per command, a shared prelude), sits on top: it imports any room's
// index.ts or internal.ts, and nothing imports it but bin/slotbus.ts; the rooms keep no command code.
// Inside src/core, its folders run one way too (CORE_FOLDERS): wire ← ops, rpc; wire ← probe ← endpoint ← observe
// ← hub (over ops and rpc too); worker over wire, probe, ops and rpc; core/index.ts and core/internal.ts, the faces,
// over them all.
// Inside src/kit likewise (KIT_FOLDERS): checks ← basics ← host, telemetry, supervision; kit/index.ts, the face, over all.
// bench/ keeps the same shape: one folder per measured feature, none importing a sibling, bench/lib/ below them.
// test/support too: a folder per room of test/ it serves, at its root only the files tests of several rooms share,
// each folder and root file with its row in test/support/README.md.
import { describe, expect, test } from "bun:test"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, normalize, relative } from "node:path"

const SRC = join(import.meta.dir, "..", "src")
const FEATURES = ["http", "events", "leases", "stdio", "nats", "status"]
/** The sideways edges between features, each for a reason: feature → the features it may import (index.ts or internal.ts only). */
export const FEATURE_EDGES: Record<string, readonly string[]> = {
  http: ["events", "nats", "status"], // the hub's app.emit and GET /events run over a topic; createHub({ nats }) is sugar for remote: nats(url); its page and /metrics are drawn through src/status
  nats: ["events", "leases"], // the transport implements the ports those rooms own (events/internal.ts, leases/internal.ts)
}

/**
 * src/core's folders, lowest first, each with the folders it may import besides itself (and the kit, native and the
 * errors, as the room may). Each folder's README.md says the same. core/index.ts and core/internal.ts, the faces,
 * import any folder; no folder imports a face.
 */
export const CORE_FOLDERS: Record<string, readonly string[]> = {
  wire: [], // heads in a slot arena, the channel, idle strategies, the remote port, the runtime block
  probe: ["wire"], // what the hot path writes to be seen: the flight recorder, the trace, the counters
  ops: ["wire"], // fronts, the control socket and its client, selfCommand
  rpc: ["wire"], // RPC's encoding, the worker's dispatcher and the hub's proxy
  endpoint: ["wire", "probe"], // the hub's books and a worker as the dispatcher sees it: on this host or remote
  observe: ["wire", "probe", "endpoint"], // the observer, stats, metrics and status over the endpoint's books
  worker: ["wire", "probe", "ops", "rpc"], // SlotWorker and its one serving pipeline
  hub: ["wire", "probe", "ops", "rpc", "endpoint", "observe"], // SlotBus, its Dispatcher and Acceptor, options, pools
}

/**
 * src/kit's folders, lowest first, each with the folders it may import besides itself (and the errors and native, as
 * the room may). kit/README.md says the same. kit/index.ts, the one face, imports any folder; no folder imports it.
 */
export const KIT_FOLDERS: Record<string, readonly string[]> = {
  checks: [], // option and value checks, create modes, errno → SystemError, text made safe for a terminal
  basics: ["checks"], // timers past 2^31−1 ms, typed listeners, backoff
  host: ["checks", "basics"], // what one host's processes share: the per-host election, 0600 token files
  telemetry: ["checks", "basics"], // metric families, the histogram, OpenTelemetry, trace context, status sections
  supervision: ["checks", "basics"], // the Supervisor, its restart policy and options, worker logs, command lines
}

/** Why `from` may not import `to`, both inside src/kit, or null when it may. */
function kitViolation(from: string, to: string): string | null {
  const folder = (p: string) => (p.split("/").length > 2 ? p.split("/")[1]! : null)
  const a = folder(from)
  const b = folder(to)
  if (from === "kit/index.ts") return null // the face
  if (a === null)
    return `${from} lies loose in src/kit: each file sits in a folder of KIT_FOLDERS, kit/index.ts alone at the top`
  if (!(a in KIT_FOLDERS)) return `${from} is in no known folder of src/kit (add it to KIT_FOLDERS)`
  if (b === null) return `${from} (kit/${a}) must not import the kit's face ${to}`
  if (a === b || KIT_FOLDERS[a]!.includes(b)) return null
  return `${from} (kit/${a}) must not import ${to} (kit/${b}): kit/${a} may import ${KIT_FOLDERS[a]!.join(", ") || "no other folder"}`
}

/**
 * The files of src/ over 450 lines, by path, with their line counts: a ratchet. A listed file may only shrink (its
 * count here is lowered with it), a file that grows past 450 is divided by role before it lands (600 is the hard cap
 * for all), and a listed file that gets under 450 (or moves) leaves the list.
 */
export const OVER_450: Readonly<Record<string, number>> = {}

/** The same ratchet for the C library's files (csrc/*.c, *.h; its tests aside). */
export const C_OVER_450: Readonly<Record<string, number>> = {
  "lease_claim.c": 458,
  "topic_publish.c": 453,
}

/** What the line counts say against `listed`: each file over 450 lines not in it, each listed one grown or not over 450. */
export function over450Violations(
  lines: Record<string, number>,
  listed: Readonly<Record<string, number>> = OVER_450,
  name = "OVER_450",
): string[] {
  const problems: string[] = []
  for (const [file, n] of Object.entries(lines))
    if (n > 450 && !(file in listed))
      problems.push(`${file} has ${n} lines: divide it by role under 450 (${name} only shrinks)`)
  for (const [file, was] of Object.entries(listed)) {
    const n = lines[file]
    if (n === undefined) problems.push(`${file} is in ${name} but not there: take it off the list`)
    else if (n <= 450) problems.push(`${file} has ${n} lines now: take it off ${name}, which only shrinks`)
    else if (n > was) problems.push(`${file} grew from ${was} to ${n} lines: divide it by role, do not add to it`)
    else if (n < was) problems.push(`${file} has ${n} lines now, fewer than ${was}: lower its count in ${name}`)
  }
  return problems
}

/** Why `from` may not import `to`, both inside src/core, or null when it may. */
function coreViolation(from: string, to: string): string | null {
  const folder = (p: string) => (p.split("/").length > 2 ? p.split("/")[1]! : null)
  const a = folder(from)
  const b = folder(to)
  if (a === null) return null // a face
  if (!(a in CORE_FOLDERS)) return `${from} is in no known folder of src/core (add it to CORE_FOLDERS)`
  if (b === null) return `${from} (core/${a}) must not import the core's face ${to}`
  if (a === b || CORE_FOLDERS[a]!.includes(b)) return null
  return `${from} (core/${a}) must not import ${to} (core/${b}): core/${a} may import ${CORE_FOLDERS[a]!.join(", ") || "no other folder"}`
}

/** Every relative import or re-export specifier in a TS source, static or dynamic. */
export function importsOf(source: string): string[] {
  const found: string[] = []
  const patterns = [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /^\s*import\s*["']([^"']+)["']/gm,
  ]
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]!)
  return found
}

/** The room a path under src/ belongs to: "errors", "runtime", "native", "core", "entry", "cli", or a feature name. */
function roomOf(path: string): string {
  if (path === "errors.ts") return "errors"
  if (path === "index.ts") return "entry"
  return path.split("/")[0]!
}

/** Why `from` (a path under src/) may not import `to` (resolved, relative to src/), or null when it may. */
export function violation(from: string, to: string): string | null {
  if (to.startsWith("..")) return `${from} reaches outside src/ (${to})`
  const a = roomOf(from)
  const b = roomOf(to)
  if (a === b) return a === "core" ? coreViolation(from, to) : a === "kit" ? kitViolation(from, to) : null
  if (to === "runtime/index.ts" && a !== "runtime") return null // the bottom room, through its face, for every room
  const allowed: Record<string, (to: string) => boolean> = {
    runtime: () => false,
    errors: () => false,
    native: (t) => t === "errors.ts",
    kit: (t) => t === "errors.ts" || t.startsWith("native/"),
    core: (t) => t === "errors.ts" || t.startsWith("native/") || t === "kit/index.ts",
    entry: (t) => t === "errors.ts" || t === "core/index.ts" || t === "kit/index.ts",
    cli: (t) =>
      t === "errors.ts" ||
      t === "kit/index.ts" ||
      t.startsWith("native/") ||
      ["core", ...FEATURES].some((r) => t === `${r}/index.ts` || t === `${r}/internal.ts`),
  }
  const feature = (t: string) =>
    t === "errors.ts" ||
    t === "core/index.ts" ||
    t === "core/internal.ts" ||
    t === "kit/index.ts" ||
    t.startsWith("native/") ||
    (FEATURE_EDGES[a] ?? []).some((f) => t === `${f}/index.ts` || t === `${f}/internal.ts`)
  const rule = allowed[a] ?? (FEATURES.includes(a) ? feature : null)
  if (!rule) return `${from} is in no known room (add it to test/architecture.test.ts)`
  return rule(to) ? null : `${from} (${a}) must not import ${to} (${b})`
}

/**
 * Each `class X extends Y` in `files` where Y is a class declared in them (slotbus's own), as "file: X extends Y".
 * Error classes (Y's name ends in Error) may extend their bases; a platform class (Request, not declared here) may be
 * extended; own classes are held, not extended (composition). A type parameter's bound (`<E extends …>`) is no base.
 */
export function ownInheritance(files: Record<string, string>): string[] {
  const code = (t: string) => t.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")
  const heads = Object.entries(files).flatMap(([file, text]) =>
    [...code(text).matchAll(/\bclass\s+([A-Za-z_$][\w$]*)\s*/g)].map((m) => {
      let rest = code(text).slice(m.index + m[0].length)
      if (rest.startsWith("<")) {
        let depth = 0
        let i = 0
        for (; i < rest.length; i++) {
          if (rest[i] === "<") depth++
          else if (rest[i] === ">" && rest[i - 1] !== "=" && --depth === 0) break
        }
        rest = rest.slice(i + 1)
      }
      const base = /^\s*extends\s+([A-Za-z_$][\w$.]*)/.exec(rest)?.[1]?.split(".").pop()
      return { file, name: m[1]!, base }
    }),
  )
  const own = new Set(heads.map((h) => h.name))
  return heads
    .filter((h) => h.base !== undefined && own.has(h.base) && !h.base.endsWith("Error"))
    .map((h) => `${h.file}: ${h.name} extends ${h.base}`)
}

const SUPPORT = join(import.meta.dir, "support")

/**
 * What test/support's tree (its root's files and folders) says against its README.md and test/'s rooms: a folder
 * here is named after the room of test/ it serves and has a row in the README; a file at the root is one the README
 * lists as shared; and each row names something that is there.
 */
export function supportViolations(
  tree: { files: readonly string[]; folders: readonly string[] },
  readme: string,
  rooms: readonly string[],
): string[] {
  const rows = [...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!)
  const problems: string[] = []
  for (const file of tree.files)
    if (file !== "README.md" && !rows.includes(file))
      problems.push(
        `test/support/${file} lies loose: move it into the folder of the room it serves, or give it a row in test/support/README.md if several rooms share it`,
      )
  for (const folder of tree.folders) {
    if (!rooms.includes(folder))
      problems.push(`test/support/${folder}/ names no room of test/: a folder here is named after the room it serves`)
    if (!rows.includes(`${folder}/`)) problems.push(`test/support/${folder}/ has no row in test/support/README.md`)
  }
  for (const row of rows) {
    const there = row.endsWith("/") ? tree.folders.includes(row.slice(0, -1)) : tree.files.includes(row)
    if (!there) problems.push(`test/support/README.md has a row for ${row}, which is not in test/support/`)
  }
  return problems
}

const BENCH = join(import.meta.dir, "..", "bench")
const BENCH_ROOMS = [
  "slots",
  "soak",
  "http",
  "events",
  "leases",
  "stdio",
  "rpc",
  "stream",
  "remote",
  "realwork",
  "fronts",
  "buses",
  "carry",
  "node",
  "compare",
  "trace",
]

/** Why `from` (a path under bench/) may not import `to` (resolved, relative to bench/), or null when it may. */
export function benchViolation(from: string, to: string): string | null {
  if (from === "cli.ts") return null // the dispatcher of `slotbus bench …` loads each room
  const a = from.split("/")[0]!
  if (a !== "lib" && !BENCH_ROOMS.includes(a))
    return `bench/${from} is in no room (add it to test/architecture.test.ts)`
  if (to.startsWith("../src/") || to.startsWith("../scripts/")) return null
  if (to.startsWith("..")) return `bench/${from} reaches outside bench/ (${to})`
  const b = to.split("/")[0]!
  return b === a || b === "lib" ? null : `bench/${from} (${a}) must not import bench/${to} (${b})`
}

/** Where a file may name the host itself: src/runtime alone. */
export const HOST_RULE = { room: "runtime/" }

/**
 * The files under src/ (path → text) that name Bun's globals, bun:ffi, node:ffi or the "bun" module's types in their
 * code (not their comments) outside src/runtime.
 */
export function hostViolations(files: Record<string, string>): string[] {
  const code = (text: string) =>
    text
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "")
      .replace(/\s\/\/\s.*$/gm, "")
  return Object.keys(files)
    .filter((f) => !f.startsWith(HOST_RULE.room))
    .filter((f) => {
      return /\bBun\.\w+|["'](?:bun:\w+|node:ffi)["']|\b(?:from\s*|import\s*\(\s*)["']bun["']/.test(code(files[f]!))
    })
    .sort()
}

/** The names a module exports (declarations and `export { … }` lists; a type-only name counts too). */
export function exportsOf(source: string): string[] {
  const names = [
    ...source.matchAll(
      /^export\s+(?:declare\s+)?(?:async\s+)?(?:const|let|function\*?|class|interface|type|enum)\s+(\w+)/gm,
    ),
  ].map((m) => m[1]!)
  for (const m of source.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}/gm))
    for (const part of m[1]!.split(",")) {
      const name = part
        .trim()
        .replace(/^type\s+/, "")
        .split(/\s+as\s+/)
        .pop()!
      if (name) names.push(name)
    }
  return names.sort()
}

/**
 * What breaks the runtime room's shape (src/runtime, path → text): each folder of it is an adapter (bun/, node/, a
 * third one later) holding the same file names as every other, an index.ts exporting the same names as every other,
 * its object checked with `satisfies Runtime`; runtime/index.ts picks one with no cast through unknown. Outside the
 * room no file asks which runtime it is on (process.versions.bun, typeof Bun, runtimeName).
 */
export function adapterViolations(files: Record<string, string>): string[] {
  const problems: string[] = []
  const adapters = new Map<string, string[]>()
  for (const f of Object.keys(files)) {
    const m = /^runtime\/([^/]+)\/(.+)$/.exec(f)
    if (m) adapters.set(m[1]!, [...(adapters.get(m[1]!) ?? []), m[2]!].sort())
  }
  const [first, ...rest] = [...adapters.keys()].sort()
  if (first === undefined) return ["src/runtime has no adapter folder"]
  for (const a of [first, ...rest]) {
    const names = adapters.get(a)!
    for (const need of ["index.ts", "quirks.ts"])
      if (!names.includes(need)) problems.push(`runtime/${a}/ has no ${need}`)
    if (a !== first && names.join() !== adapters.get(first)!.join())
      problems.push(
        `runtime/${a}/ holds ${names.join(", ")}; runtime/${first}/ holds ${adapters.get(first)!.join(", ")}`,
      )
    const index = files[`runtime/${a}/index.ts`]
    if (index === undefined) continue
    if (!/\}\s*satisfies\s+Runtime\b/.test(index))
      problems.push(`runtime/${a}/index.ts: its object is not \`satisfies Runtime\``)
    const mine = exportsOf(index).join()
    const theirs = exportsOf(files[`runtime/${first}/index.ts`] ?? "").join()
    if (a !== first && mine !== theirs)
      problems.push(`runtime/${a}/index.ts exports ${mine}; runtime/${first}/index.ts ${theirs}`)
  }
  if (/\bas\s+unknown\b/.test(files["runtime/index.ts"] ?? "")) problems.push("runtime/index.ts casts through unknown")
  const branch = /\bprocess\.versions\.bun\b|\btypeof\s+Bun\b|\bruntimeName\b|\bprocess\.versions\s*\[\s*["']bun["']/
  for (const [f, text] of Object.entries(files)) {
    if (f.startsWith(HOST_RULE.room)) continue
    const code = text
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "")
      .replace(/\s\/\/\s.*$/gm, "")
    if (branch.test(code)) problems.push(`${f} asks which runtime it is on (ask the runtime room instead)`)
  }
  return problems
}

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.replaceAll("\\", "/"))
}

function edgeViolations(files: Record<string, string>, rule = violation): string[] {
  const problems: string[] = []
  for (const [file, text] of Object.entries(files)) {
    for (const spec of importsOf(text)) {
      if (!spec.startsWith(".")) continue // packages and bun: builtins
      const to = relative(".", normalize(join(dirname(file), spec))).replaceAll("\\", "/")
      const why = rule(file, to)
      if (why) problems.push(why)
    }
  }
  return problems
}

/** Every `#include "…"` of a C source (system headers in <> are not ours). */
export function includesOf(source: string): string[] {
  return [...source.matchAll(/^\s*#\s*include\s*"([^"]+)"/gm)].map((m) => `./${m[1]}`)
}

/** Import cycles among `files` (type-only imports included), each as its files in order, the first repeated last. */
export function importCycles(files: Record<string, string>, specsOf = importsOf): string[][] {
  const edges = new Map<string, string[]>()
  for (const [file, text] of Object.entries(files))
    edges.set(
      file,
      specsOf(text)
        .filter((spec) => spec.startsWith("."))
        .map((spec) => relative(".", normalize(join(dirname(file), spec))).replaceAll("\\", "/"))
        .filter((to) => to in files),
    )
  const cycles: string[][] = []
  const state = new Map<string, "open" | "done">()
  const path: string[] = []
  const visit = (f: string) => {
    state.set(f, "open")
    path.push(f)
    for (const to of edges.get(f) ?? []) {
      if (state.get(to) === "open") cycles.push([...path.slice(path.indexOf(to)), to])
      else if (!state.has(to)) visit(to)
    }
    path.pop()
    state.set(f, "done")
  }
  for (const f of Object.keys(files).sort()) if (!state.has(f)) visit(f)
  return cycles
}

describe("the layout of src/", () => {
  const files = Object.fromEntries(sources(SRC).map((f) => [f, readFileSync(join(SRC, f), "utf8")]))

  test("no file is over 600 lines: a file that grows past it is divided by role first", () => {
    const long = Object.entries(files)
      .map(([f, text]) => [f, text.split("\n").length - 1] as const)
      .filter(([, lines]) => lines > 600)
    expect(long).toEqual([])
  })

  test("no file is over 450 lines but those OVER_450 names, each of those still over 450 and no longer than it was", () => {
    const lines = Object.fromEntries(Object.entries(files).map(([f, text]) => [f, text.split("\n").length - 1]))
    expect(over450Violations(lines)).toEqual([])
  })

  test("no file imports itself back through others, type-only imports included", () => {
    expect(importCycles(files).map((c) => c.join(" → "))).toEqual([])
  })

  test("every import runs downward: errors ← native ← kit ← core ← features, features never sideways", () => {
    expect(Object.keys(files).length).toBeGreaterThan(10)
    expect(edgeViolations(files)).toEqual([])
  })

  test("the package entry exports the core's public face, the kit's supervisor and the runtime's error only; features reach the core through its index.ts or internal.ts and the kit through its index.ts", () => {
    expect(importsOf(files["index.ts"]!).sort()).toEqual([
      "./core/index.ts",
      "./core/index.ts",
      "./errors.ts",
      "./kit/index.ts",
      "./kit/index.ts",
      "./runtime/index.ts", // its one error, UnsupportedRuntimeError (a Node that cannot run slotbus, issue 67)
    ])
    const featureImports = Object.entries(files)
      .filter(([f]) => FEATURES.includes(roomOf(f)))
      .flatMap(([f, t]) => importsOf(t).map((s) => relative(".", normalize(join(dirname(f), s)))))
      .filter((to) => to.startsWith("core/"))
    for (const to of featureImports) expect(to).toMatch(/^core\/(index|internal)\.ts$/)
    const kitImports = Object.entries(files)
      .filter(([f]) => roomOf(f) !== "kit")
      .flatMap(([f, t]) => importsOf(t).map((s) => relative(".", normalize(join(dirname(f), s)))))
      .filter((to) => to.startsWith("kit/"))
    expect(kitImports.length).toBeGreaterThan(10)
    for (const to of kitImports) expect(to).toBe("kit/index.ts")
  })

  test("the host is one room: nothing outside src/runtime names Bun's globals, bun:ffi, node:ffi or the bun module (the HTTP hub's Bun.serve aside)", () => {
    expect(Object.keys(files).filter((f) => f.startsWith(HOST_RULE.room)).length).toBeGreaterThan(2)
    expect(hostViolations(files)).toEqual([])
    for (const f of Object.keys(files).filter((f) => f.startsWith("runtime/bun/")))
      for (const s of importsOf(files[f]!).filter((s) => s.startsWith(".")))
        expect(relative(".", normalize(join(dirname(f), s)))).toMatch(/^(runtime\/|\.\.\/prebuilds\/)/)
  })

  test("the runtime room is a contract and its adapters: bun/ and node/ hold the same file names and exports, each checked with `satisfies Runtime`, picked with no cast; nothing outside it asks which runtime it is on", () => {
    expect([...new Set(Object.keys(files).flatMap((f) => /^runtime\/([^/]+)\//.exec(f)?.[1] ?? []))].sort()).toEqual([
      "bun",
      "node",
    ])
    expect(adapterViolations(files)).toEqual([])
  })

  test("the kit knows nothing of slots: it imports only the errors, native constants and itself", () => {
    const kit = Object.entries(files).filter(([f]) => roomOf(f) === "kit")
    expect(kit.length).toBeGreaterThan(5)
    for (const [f, t] of kit)
      for (const s of importsOf(t).filter((s) => s.startsWith(".")))
        expect(relative(".", normalize(join(dirname(f), s)))).toMatch(
          /^(kit\/|errors\.ts$|native\/|runtime\/index\.ts$)/,
        )
  })

  test("the flight recorder is written from core/probe only: its C calls and its stage are FlightRecorder's", () => {
    // sb_rec_now reads the records' clock (`slotbus top` does too); every other sb_rec_* call writes
    const writes = /\b(?:sb_rec_(?!now\b)\w+|recorderStage)\s*\(|\.stage\[/
    expect(Object.keys(files).filter((f) => !f.startsWith("native/") && writes.test(files[f]!))).toEqual([
      "core/probe/recorder.ts",
    ])
    expect(writes.test("rec.stage[0] = p.started + rec.offset")).toBe(true) // what slot-endpoint.ts did
  })

  /** The files under src/ whose code (not only their types) imports `pkg`, statically or with import(). */
  const valueImporters = (pkg: RegExp) =>
    Object.keys(files)
      .filter((f) => {
        const code = files[f]!.replace(/^\s*(\/\/|\*).*$/gm, "") // comments name packages too
        const fromPkg = new RegExp(
          `^\\s*(?:import|export)\\s+(?!type\\b)(?:[\\w*\\s,]*\\{[^}]*\\}|[\\w*\\s]+)\\s*from\\s*"${pkg.source}`,
          "m",
        )
        const loaded = new RegExp(`\\bimport\\s*\\(\\s*"${pkg.source}[^"]*"\\s*\\)(?!\\.\\w+\\s*[,;)>])`)
        return fromPkg.test(code) || loaded.test(code)
      })
      .sort()

  test("bun:ffi and node:ffi: one dlopen each, in runtime/bun/ffi.ts and runtime/node/index.ts, node:ffi taken in runtime/node/ffi.ts; the library opened in native/ffi.ts; shared-memory views (memoryView) in the files CONTRIBUTING names", () => {
    expect(
      Object.keys(files)
        .filter((f) => /\bdlopen\s*\(/.test(files[f]!))
        .sort(),
    ).toEqual(["runtime/bun/ffi.ts", "runtime/node/index.ts"])
    // both are taken with process.getBuiltinModule, never imported: a compiled Bun bundle must not import node:ffi
    // (Bun has none), and a build for Node holds bun.ts too, whose `bun:` import Node refuses
    expect(valueImporters(/bun:ffi/)).toEqual([])
    expect(valueImporters(/node:ffi/)).toEqual([])
    expect(Object.keys(files).filter((f) => /["']bun:ffi["']/.test(files[f]!))).toEqual(["runtime/bun/ffi.ts"])
    expect(Object.keys(files).filter((f) => /["']node:ffi["']/.test(files[f]!))).toEqual(["runtime/node/ffi.ts"])
    expect(Object.keys(files).filter((f) => /\bopenLibrary\s*\(/.test(files[f]!) && !f.startsWith("runtime/"))).toEqual(
      ["native/ffi.ts"],
    )
    expect(
      Object.keys(files)
        .filter((f) => /\bmemoryView\s*\(/.test(files[f]!) && !f.startsWith("runtime/"))
        .sort(),
    ).toEqual([
      "core/wire/channel.ts",
      "events/header.ts",
      "events/subscription.ts",
      "events/topic.ts",
      "native/ffi.ts",
    ])
  })

  test("the optional NATS packages are loaded in nats/packages.ts only, so a missing one is a MissingPackageError", () => {
    expect(valueImporters(/@nats-io\//)).toEqual(["nats/packages.ts"])
  })

  test("only the transport's own room and the HTTP app layer import src/nats; no entry registers anything at import", () => {
    const importers = Object.keys(files).filter((f) =>
      importsOf(files[f]!).some((s) => relative(".", normalize(join(dirname(f), s))).startsWith("nats/")),
    )
    expect(importers.filter((f) => !f.startsWith("nats/") && !f.startsWith("http/"))).toEqual([])
    // an entry's statements are exports only (and imports for them): nothing runs when a user imports it
    for (const entry of Object.keys(files).filter((f) => f === "index.ts" || /^[a-z]+\/index\.ts$/.test(f))) {
      const code = files[entry]!.replace(/^\s*\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "")
      const statements = code.split("\n").filter((l) => /^[A-Za-z]/.test(l))
      const ran = statements.filter((l) => !/^(export|import|\}|\)|const |function |class |interface |type )/.test(l))
      expect({ entry, ran }).toEqual({ entry, ran: [] })
    }
  })

  test("src/core is the folders CORE_FOLDERS lists, each with a README.md head, each importing only folders listed before it", () => {
    const folders = [
      ...new Set(
        Object.keys(files)
          .filter((f) => /^core\/[^/]+\//.test(f))
          .map((f) => f.split("/")[1]!),
      ),
    ]
    expect(folders.sort()).toEqual(Object.keys(CORE_FOLDERS).sort())
    expect(
      Object.keys(files)
        .filter((f) => /^core\/[^/]+\.ts$/.test(f))
        .sort(),
    ).toEqual(["core/index.ts", "core/internal.ts"])
    const order = Object.keys(CORE_FOLDERS)
    for (const [folder, below] of Object.entries(CORE_FOLDERS)) {
      for (const b of below) expect(order.indexOf(b)).toBeLessThan(order.indexOf(folder))
      expect(readFileSync(join(SRC, "core", folder, "README.md"), "utf8")).toContain("May import")
    }
  })

  test("the core's maps (core/README.md and its folders') name every file of src/core", () => {
    const map = ["README.md", ...Object.keys(CORE_FOLDERS).map((f) => `${f}/README.md`)]
      .map((f) => readFileSync(join(SRC, "core", f), "utf8"))
      .join("\n")
    const named = (f: string) => new RegExp(`(^|[\\s/(])${f.split("/").at(-1)!.replace(".", "\\.")}\\b`, "m").test(map)
    expect(Object.keys(files).filter((f) => f.startsWith("core/") && !named(f))).toEqual([])
  })

  test("src/kit is the folders KIT_FOLDERS lists, each in kit/README.md, and kit/index.ts; each imports only folders listed before it", () => {
    const folders = [
      ...new Set(
        Object.keys(files)
          .filter((f) => /^kit\/[^/]+\//.test(f))
          .map((f) => f.split("/")[1]!),
      ),
    ]
    expect(folders.sort()).toEqual(Object.keys(KIT_FOLDERS).sort())
    expect(Object.keys(files).filter((f) => /^kit\/[^/]+\.ts$/.test(f))).toEqual(["kit/index.ts"])
    const readme = readFileSync(join(SRC, "kit", "README.md"), "utf8")
    const order = Object.keys(KIT_FOLDERS)
    for (const [folder, below] of Object.entries(KIT_FOLDERS)) {
      for (const b of below) expect(order.indexOf(b)).toBeLessThan(order.indexOf(folder))
      expect(readme).toContain(`${folder}/`)
    }
    for (const f of Object.keys(files).filter((f) => /^kit\/[^/]+\//.test(f)))
      expect(readme).toContain(f.slice(4).split("/")[1]!)
  })

  test("tests mirror the rooms below the features: each folder of src/core and src/kit has its test folder", () => {
    const testFolders = (room: string) =>
      readdirSync(join(import.meta.dir, room), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
    for (const [room, folders] of [
      ["core", CORE_FOLDERS],
      ["kit", KIT_FOLDERS],
    ] as const)
      expect(Object.keys(folders).filter((f) => !testFolders(room).includes(f))).toEqual([])
  })

  test("no class extends a class of slotbus's own but an error: own classes are held (composition)", () => {
    expect(ownInheritance(files)).toEqual([])
  })

  test("the shared error base imports nothing", () => {
    expect(importsOf(files["errors.ts"]!)).toEqual([])
  })
})

const CSRC = join(import.meta.dir, "..", "csrc")
/** csrc/'s layers, lowest first: a file includes headers of its own layer or below, never of one above. */
const C_LAYERS: readonly RegExp[] = [
  /^(shm\.h|sys\.h|platform\.[ch]|scheme(_\w+)?\.[ch]|os(_\w+)?\.[ch])$/, // the OS layer: named atomics, prelude, platform seam
  /^(slotbus|lease|topic)\.h$/, // the public API
  /./, // the library over both: slots, streams, leases, topics, the recorder, the platform's public calls
]
const layerOf = (f: string) => C_LAYERS.findIndex((re) => re.test(f))

/** The functions a C source defines (a declaration ends in `;`, a definition opens `{`), static ones too or not. */
function cDefines(code: string, withStatic: boolean): string[] {
  const defs = code.matchAll(/^(?!typedef\b)(static\b)?[A-Za-z_][\w \t*]*?\b([a-z_]\w*)\s*\([^;{]*\)\s*\{/gm)
  return [...defs].filter((m) => withStatic || !m[1]).map((m) => m[2]!)
}

/** What csrc/ promises (CONTRIBUTING, csrc/shm.h, csrc/platform.h), each a list of the files breaking it. */
export function cViolations(files: Record<string, string>): {
  cycles: string[][]
  upward: string[]
  callCycles: string[][]
  rawAtomics: string[]
  osAbove: string[]
} {
  const bare = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "")
  const code = (f: string) => bare(files[f]!)
  // the seam and what is below it: the only files that may ask which OS they are built for
  const seam = /^(platform\.[ch]|scheme(_\w+)?\.[ch]|os(_\w+)?\.[ch])$/
  const sources = Object.fromEntries(Object.entries(files).filter(([f]) => f.endsWith(".c")))
  const definedIn = new Map<string, string[]>()
  for (const f of Object.keys(sources))
    for (const fn of cDefines(code(f), false)) definedIn.set(fn, [...(definedIn.get(fn) ?? []), f])
  // a file's calls of functions another file defines (both OS files define the same ones: a call reaches either)
  const callees = (text: string) => {
    const own = new Set(cDefines(bare(text), true))
    const called = [...bare(text).matchAll(/\b([a-z_]\w*)\s*\(/g)].map((m) => m[1]!).filter((fn) => !own.has(fn))
    return [...new Set(called.flatMap((fn) => definedIn.get(fn) ?? []))].map((f) => `./${f}`)
  }
  return {
    cycles: importCycles(files, includesOf),
    upward: Object.keys(files).flatMap((f) =>
      includesOf(files[f]!)
        .map((spec) => spec.slice(2))
        .filter((to) => to in files && layerOf(to) > layerOf(f))
        .map((to) => `${f} includes ${to}`),
    ),
    callCycles: importCycles(sources, callees),
    rawAtomics: Object.keys(files).filter(
      (f) =>
        f !== "shm.h" &&
        /\batomic_(load|store|exchange|compare_exchange|fetch_|thread_fence)|\bmemory_order_|__atomic_/.test(code(f)),
    ),
    osAbove: Object.keys(files).filter((f) => !seam.test(f) && /__APPLE__|__linux__/.test(code(f))),
  }
}

describe("the layout of csrc/", () => {
  const files = Object.fromEntries(
    readdirSync(CSRC)
      .filter((f) => /\.[ch]$/.test(f))
      .map((f) => [f, readFileSync(join(CSRC, f), "utf8")]),
  )

  test("no include circles; every atomic goes through shm.h's named orderings; only the platform seam asks which OS it is on", () => {
    expect(Object.keys(files).length).toBeGreaterThan(20)
    expect(cViolations(files)).toEqual({ cycles: [], upward: [], callCycles: [], rawAtomics: [], osAbove: [] })
  })

  test("no C file is over 450 lines but those C_OVER_450 names, each of those no longer than it was", () => {
    const lines = Object.fromEntries(Object.entries(files).map(([f, text]) => [f, text.split("\n").length - 1]))
    expect(over450Violations(lines, C_OVER_450, "C_OVER_450")).toEqual([])
  })

  test("the layers run one way: the OS layer includes no public API header, and no C files call each other round a circle", () => {
    const { upward, callCycles } = cViolations(files)
    expect(Object.keys(files).filter((f) => layerOf(f) === 0).length).toBeGreaterThan(8)
    expect({ upward, callCycles }).toEqual({ upward: [], callCycles: [] })
  })
})

describe("the guard notices a broken layout", () => {
  test("csrc/: an include circle, a raw atomic at a call site and an OS test above the seam are each found", () => {
    const ok = {
      "shm.h": "#define shm_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)\n",
      "sys.h": '#include "platform.h"\n',
      "platform.h": '#include "shm.h"\n#ifdef __linux__\n#endif\n',
      "os_darwin.c": '#include "sys.h"\n#ifdef __APPLE__\n#endif\n',
      "topic_ring.c":
        '#include "sys.h"\n/* not atomic_load_explicit here, nor __linux__ */\nx = shm_load_acquire(&w);\n',
    }
    expect(cViolations(ok)).toEqual({ cycles: [], upward: [], callCycles: [], rawAtomics: [], osAbove: [] })
    expect(cViolations({ ...ok, "shm.h": '#include "sys.h"\n' }).cycles).toEqual([
      ["sys.h", "platform.h", "shm.h", "sys.h"],
    ])
    const raw = { ...ok, "topic_ring.c": "x = atomic_load_explicit(&w, memory_order_acquire);\n" }
    expect(cViolations(raw).rawAtomics).toEqual(["topic_ring.c"])
    expect(cViolations({ ...ok, "lease_wait.c": "y = __atomic_load_n(&w, __ATOMIC_ACQUIRE);\n" }).rawAtomics).toEqual([
      "lease_wait.c",
    ])
    expect(cViolations({ ...ok, "lease_open.c": "#if defined(__APPLE__)\n#endif\n" }).osAbove).toEqual(["lease_open.c"])
  })

  test("csrc/: an include of a layer above and a circle of calls between C files are each found", () => {
    const ok = {
      "slotbus.h": "int sb_park(void *ch);\n",
      "platform.h": "int plat_wait(int w);\n",
      "platform.c": '#include "platform.h"\nint plat_wait(int w) { return w; }\n',
      "park.c": '#include "slotbus.h"\n#include "platform.h"\nint sb_park(void *ch) { return plat_wait(0); }\n',
      "stream.c": '#include "slotbus.h"\nint stream_wait(void *ch) {\n  return sb_park(ch);\n}\n',
      "transitions.c": '#include "slotbus.h"\nint sb_hub_poll(void *ch) { return stream_wait(ch); }\n',
    }
    expect(cViolations(ok)).toMatchObject({ upward: [], callCycles: [] })
    const up = { ...ok, "platform.c": '#include "platform.h"\n#include "slotbus.h" /* SB_ESOCKDIR */\n' }
    expect(cViolations(up).upward).toEqual(["platform.c includes slotbus.h"])
    // a static helper of the same name, or a call inside a comment, is no edge; a call back up is
    const local = "static int sb_hub_poll(void *ch) { return 0; }\n/* sb_hub_poll(ch) */\n"
    expect(cViolations({ ...ok, "park.c": ok["park.c"] + local }).callCycles).toEqual([])
    const back = "int stream_park(void *ch) { return sb_hub_poll(ch); }\n"
    expect(cViolations({ ...ok, "park.c": ok["park.c"] + back }).callCycles).toEqual([
      ["park.c", "transitions.c", "stream.c", "park.c"],
    ])
  })

  test("the runtime room's shape: an adapter missing a file or an export, one without `satisfies Runtime`, a pick through unknown and a runtime branch outside the room are each found", () => {
    const index = (extra = "") =>
      `const adapter = { name: "x" } satisfies Runtime\nexport const host: Runtime = adapter\n${extra}`
    const ok: Record<string, string> = {
      "runtime/index.ts": 'const host: Runtime = (process.versions.bun ? require("./bun/index.ts") : x).host\n',
      "runtime/bun/index.ts": index(),
      "runtime/bun/quirks.ts": "export const BUN_QUIRKS = {}\n",
      "runtime/bun/net.ts": "export const listen = Bun.listen\n",
      "runtime/node/index.ts": index(),
      "runtime/node/quirks.ts": "export const NODE_QUIRKS = {}\n",
      "runtime/node/net.ts": "export function listen() {}\n",
      "http/hub/server.ts": "this.server = await serveHttp({ port, fetch })\n",
      "native/lib-path.ts":
        '// not `if (runtimeName === "bun")`: the runtime says\nconst p = await embeddedLibrary(platform)\n',
    }
    expect(adapterViolations(ok)).toEqual([])
    const { "runtime/node/net.ts": _net, ...noNet } = ok
    expect(adapterViolations(noNet)).toEqual([
      "runtime/node/ holds index.ts, quirks.ts; runtime/bun/ holds index.ts, net.ts, quirks.ts",
    ])
    const { "runtime/node/quirks.ts": _q, "runtime/bun/quirks.ts": _b, ...noQuirks } = ok
    expect(adapterViolations(noQuirks)).toEqual(["runtime/bun/ has no quirks.ts", "runtime/node/ has no quirks.ts"])
    expect(adapterViolations({ ...ok, "runtime/node/index.ts": index("export const nodeOnly = 1") })).toEqual([
      "runtime/node/index.ts exports host,nodeOnly; runtime/bun/index.ts host",
    ])
    expect(
      adapterViolations({ ...ok, "runtime/node/index.ts": 'export const host = { name: "x" } as Runtime\n' }),
    ).toEqual(["runtime/node/index.ts: its object is not `satisfies Runtime`"])
    expect(
      adapterViolations({ ...ok, "runtime/index.ts": 'const host = require("./node/index.ts") as unknown as Bun\n' }),
    ).toEqual(["runtime/index.ts casts through unknown"])
    for (const branch of [
      "if (process.versions.bun) x()",
      'const onBun = typeof Bun !== "undefined"',
      'if (runtimeName === "bun") x()',
      'const b = process.versions["bun"]',
    ])
      expect(adapterViolations({ ...ok, "native/lib-path.ts": `${branch}\n` })).toEqual([
        "native/lib-path.ts asks which runtime it is on (ask the runtime room instead)",
      ])
    expect(
      adapterViolations({ ...ok, "http/hub/server.ts": 'if (runtimeName !== "bun") throw bunOnly("x")\n' }),
    ).toEqual(["http/hub/server.ts asks which runtime it is on (ask the runtime room instead)"])
  })

  test("a file outside src/runtime that names a Bun global, bun:ffi, node:ffi or the bun module is refused (the HTTP hub's Bun.serve too); a comment and the runtime are not", () => {
    const ok = {
      "runtime/bun/index.ts": 'import { dlopen } from "bun:ffi"\nexport const nanoseconds = Bun.nanoseconds\n',
      "core/hub/dispatcher.ts":
        'import { nanoseconds } from "../../runtime/index.ts"\n// not Bun.nanoseconds()\nconst t = nanoseconds() // nor Bun.sleep\n',
      "http/hub/server.ts": "// not Bun.serve: the runtime's server\nthis.server = await serveHttp({ fetch })\n",
    }
    expect(hostViolations(ok)).toEqual([])
    expect(hostViolations({ ...ok, "http/hub/server.ts": "this.server = Bun.serve({ fetch })\n" })).toEqual([
      "http/hub/server.ts",
    ])
    expect(hostViolations({ ...ok, "http/hub/options.ts": 'import type { Server } from "bun"\n' })).toEqual([
      "http/hub/options.ts",
    ])
    expect(hostViolations({ ...ok, "core/wire/pump.ts": "const now = Bun.nanoseconds\n" })).toEqual([
      "core/wire/pump.ts",
    ])
    expect(hostViolations({ ...ok, "events/topic.ts": 'import type { Pointer } from "bun:ffi"\n' })).toEqual([
      "events/topic.ts",
    ])
    expect(hostViolations({ ...ok, "native/ffi.ts": 'import { dlopen } from "node:ffi"\n' })).toEqual(["native/ffi.ts"])
    expect(hostViolations({ ...ok, "core/rpc/rpc.ts": 'import { serialize } from "bun:jsc"\n' })).toEqual([
      "core/rpc/rpc.ts",
    ])
    expect(hostViolations({ ...ok, "runtime/node/ffi.ts": 'import ffi from "node:ffi"\n' })).toEqual([])
    expect(hostViolations({ ...ok, "status/server.ts": "server = Bun.serve({ fetch })\n" })).toEqual([
      "status/server.ts",
    ])
    expect(hostViolations({ ...ok, "http/hub/proxy.ts": "await Bun.sleep(1)\n" })).toEqual(["http/hub/proxy.ts"])
    expect(
      hostViolations({ ...ok, "core/observe/serve-span.ts": 'type R = import("bun").Serve.Routes<W, R>\n' }),
    ).toEqual(["core/observe/serve-span.ts"])
    expect(hostViolations({ ...ok, "stdio/pool.ts": 'import type { Subprocess } from "bun"\n' })).toEqual([
      "stdio/pool.ts",
    ])
  })

  test("a class extending an own class is found; an error base, a platform class or a type bound is not", () => {
    const own = {
      "errors.ts": "export class SlotBusError extends Error {}\n",
      "kit/supervision/supervisor.ts": "export class Supervisor {\n}\n",
      "leases/held.ts": "export abstract class HeldLease {}\nexport class Holding {}\n",
      "kit/basics/emitter.ts": "export class Emitter<E extends { [K in keyof E]: unknown[] }> {}\n",
    }
    expect(ownInheritance(own)).toEqual([])
    const refused = [
      ["core/ops/front-pool.ts", "export class SharedPool extends Supervisor {", "SharedPool extends Supervisor"],
      ["leases/lease.ts", "export class Lease extends HeldLease implements Disposable {", "Lease extends HeldLease"],
      ["core/x.ts", "class Tap<T extends () => void> extends Emitter<{ a: [T] }> {", "Tap extends Emitter"],
    ]
    for (const [file, line, found] of refused)
      expect(ownInheritance({ ...own, [file!]: `${line}\n` })).toEqual([`${file}: ${found}`])
    const allowed = [
      "export class E extends SlotBusError {}", // an error class
      "class W extends Request {}", // a platform class (core/worker/request.ts's WebRequest)
      "export class Pool {\n  private readonly sup: Supervisor\n}", // held, not extended
      "// class A extends Supervisor, in a comment",
    ]
    for (const line of allowed) expect(ownInheritance({ ...own, "core/y.ts": `${line}\n` })).toEqual([])
  })

  test("an import cycle is found, type-only or through several files; a diamond is not one", () => {
    expect(
      importCycles({ "a.ts": 'import type { B } from "./b.ts"\n', "b.ts": 'import { a } from "./a.ts"\n' }),
    ).toEqual([["a.ts", "b.ts", "a.ts"]])
    const ring = {
      "x/a.ts": 'export * from "./b.ts"\n',
      "x/b.ts": 'import "../c.ts"\n',
      "c.ts": 'import("./x/a.ts")\n',
    }
    expect(importCycles(ring).length).toBe(1)
    const diamond = {
      "a.ts": 'import "./b.ts"\nimport "./c.ts"\n',
      "b.ts": 'import "./d.ts"\n',
      "c.ts": 'import "./d.ts"\n',
      "d.ts": "",
    }
    expect(importCycles(diamond)).toEqual([])
  })

  test.each([
    ["core/hub/bus.ts", 'import { createHub } from "../../http/index.ts"'],
    ["http/hub.ts", 'import { SlotBus } from "../index.ts"'],
    ["http/hub.ts", 'import { Channel } from "../core/wire/channel.ts"'],
    ["events/topic.ts", 'export { x } from "../leases/index.ts"'],
    ["native/lib-path.ts", 'import { SlotBus } from "../core/index.ts"'],
    ["errors.ts", 'import { native } from "./native/ffi.ts"'],
    ["core/worker/worker.ts", 'const m = await import("../../stdio/index.ts")'],
    ["stdio/bus.ts", 'import "../../bench/cli.ts"'],
    ["events/topic.ts", 'import { createHub } from "../http/index.ts"'], // the declared edge runs one way only
    ["leases/contest.ts", 'import { Topic } from "../events/index.ts"'], // an undeclared edge
    ["http/hub/sse.ts", 'import { Topic } from "../../events/topic.ts"'], // a declared edge, but past the index
    ["index.ts", 'export * from "./http/index.ts"'],
    ["leases/cluster.ts", 'const { nats } = await import("../nats/index.ts")'], // nats → leases, never back: the caller passes the transport in
    ["events/topic.ts", 'import type { TopicBridge } from "../nats/topic-bridge.ts"'],
    ["core/hub/bus.ts", 'import type { Nats } from "../../nats/index.ts"'],
    ["http/hub/status.ts", 'import { STATUS_PAGE_HTML } from "../../status/page.ts"'], // past the internal face
    ["leases/contest.ts", 'import { renderReport } from "../status/internal.ts"'], // an undeclared edge
    ["status/server.ts", 'import { runStatusCli } from "../cli/status.ts"'], // the commands sit on top: no room imports them
    ["http/hub/server.ts", 'import { runHubCli } from "../../cli/hub.ts"'],
    ["cli/tail.ts", 'import { Topic } from "../events/topic.ts"'], // the commands reach a room through its faces
    ["cli/status.ts", 'import { hubReport } from "../http/hub/section.ts"'],
    ["kit/supervision/supervisor.ts", 'import type { SlotBus } from "../../core/hub/bus.ts"'], // the kit knows nothing of slots
    ["kit/telemetry/status.ts", 'import { SlotBus } from "../../core/index.ts"'],
    ["events/topic.ts", 'import { sleep } from "../kit/basics/timers.ts"'], // past the kit's index
    ["core/hub/bus.ts", 'import { checkOptions } from "../../kit/checks/option-check.ts"'],
    ["kit/checks/value-check.ts", 'import { sleep } from "../basics/timers.ts"'], // src/kit's folders: upward
    ["kit/telemetry/metrics.ts", 'import { Supervisor } from "../supervision/supervisor.ts"'], // sideways
    ["kit/supervision/supervisor.ts", 'import { Backoff } from "../index.ts"'], // a folder never imports the face
    ["kit/stray.ts", 'import { Backoff } from "./basics/backoff.ts"'], // a loose file
    ["kit/misc/thing.ts", 'import { sleep } from "../basics/timers.ts"'], // a folder nobody declared
    ["core/rpc/rpc.ts", 'import { isThenable } from "../worker/answer.ts"'], // src/core's folders: upward
    ["core/worker/worker.ts", 'import { positiveInt } from "../hub/options.ts"'],
    ["core/observe/stats.ts", 'import type { Dispatcher } from "../hub/dispatcher.ts"'],
    ["core/endpoint/endpoint.ts", 'import type { BusObserver } from "../observe/observe.ts"'],
    ["core/probe/counters.ts", 'import type { Pending } from "../endpoint/endpoint.ts"'], // probes sit below the books
    ["core/wire/channel.ts", 'import type { FlightRecorder } from "../probe/recorder.ts"'], // and above the wire
    ["core/wire/codec.ts", 'import { SlotBus } from "../index.ts"'], // a folder never imports the faces
    ["core/misc/thing.ts", 'import { encodeHead } from "../wire/codec.ts"'], // a folder nobody declared
    ["runtime/bun/index.ts", 'import { NativeLibraryError } from "../../errors.ts"'], // the bottom room imports nothing of slotbus
    ["runtime/bun/index.ts", 'import { MAX_TIMER_MS } from "../../kit/index.ts"'],
    ["core/wire/pump.ts", 'import { nanoseconds } from "../../runtime/bun/index.ts"'], // past the runtime's face
  ])("%s with `%s` is refused", (file, line) => {
    expect(edgeViolations({ [file]: `${line}\n` }).length).toBe(1)
  })

  test.each([
    ["http/hub.ts", 'import { SlotBus, type IdleStrategy } from "../core/index.ts"'],
    ["events/topic.ts", 'import { native } from "../native/ffi.ts"'],
    ["core/hub/bus.ts", 'import type { Chan } from "../../native/ffi.ts"'],
    ["http/hub/sse.ts", 'import { Topic } from "../../events/index.ts"'], // the declared edge
    ["nats/kv-lease.ts", 'import type { LeaseTable } from "../leases/internal.ts"'], // the transport implements the room's port
    ["http/hub/server.ts", 'import { Registry } from "./registry.ts"\nimport { RouteError } from "../errors.ts"'],
    ["http/hub/status.ts", 'import { STATUS_PAGE_HTML } from "../../status/internal.ts"'], // a declared edge's internal face
    ["cli/status.ts", 'import { hubReport } from "../http/internal.ts"'], // the commands use any room's faces
    ["cli/stdio.ts", 'import { StdioBus } from "../stdio/index.ts"\nimport { serveStatus } from "../status/index.ts"'],
    ["cli/call.ts", 'import { controlCall } from "../core/internal.ts"'],
    ["stdio/pool.ts", 'import { Supervisor } from "../kit/index.ts"'],
    ["core/worker/worker.ts", 'import { Backoff } from "../../kit/index.ts"'],
    ["core/hub/bus.ts", 'import { Dispatcher } from "./dispatcher.ts"\nimport { Channel } from "../wire/channel.ts"'],
    ["core/observe/stats.ts", 'import type { WorkerInfo } from "../endpoint/endpoint.ts"'], // downward
    ["core/endpoint/slot-endpoint.ts", 'import type { FlightRecorder } from "../probe/recorder.ts"'], // the hot path writes its probes
    ["core/index.ts", 'export { SlotBus } from "./hub/bus.ts"'], // the faces re-export any folder
    ["kit/checks/lifecycle.ts", 'import { Errno } from "../../native/ffi.ts"'],
    [
      "kit/supervision/supervisor.ts",
      'import { Backoff } from "../basics/backoff.ts"\nimport { checkOptions } from "../checks/option-check.ts"',
    ],
    ["kit/index.ts", 'export { Supervisor } from "./supervision/supervisor.ts"'], // the face re-exports any folder
    ["core/wire/pump.ts", 'import { nanoseconds } from "../../runtime/index.ts"'], // the runtime: every room, through its face
    ["native/ffi.ts", 'import { openLibrary } from "../runtime/index.ts"'],
    ["kit/basics/timers.ts", 'import { sleep } from "../../runtime/index.ts"'],
    ["events/topic.ts", 'import { memoryView, type Pointer } from "../runtime/index.ts"'],
    ["runtime/index.ts", 'export * from "./bun/index.ts"'],
    ["runtime/node/http.ts", 'import { requestListener } from "../fetch-listener.ts"'],
  ])("%s with `%s` is allowed", (file, line) => {
    expect(edgeViolations({ [file]: `${line}\n` })).toEqual([])
  })
})

describe("the OVER_450 list only shrinks", () => {
  const listed = { "big.ts": 500, "core/huge.ts": 590 }
  test.each([
    [
      "a file over 450 lines not listed",
      { "big.ts": 500, "core/huge.ts": 590, "core/new.ts": 451 },
      "core/new.ts has 451 lines",
    ],
    ["a listed file now at 450 lines", { "big.ts": 450, "core/huge.ts": 590 }, "big.ts has 450 lines now"],
    ["a listed file now small", { "big.ts": 500, "core/huge.ts": 120 }, "core/huge.ts has 120 lines now"],
    [
      "a listed file moved or gone",
      { "big.ts": 500, "core/moved/huge.ts": 590 },
      "core/huge.ts is in OVER_450 but not there",
    ],
    ["a listed file that grew", { "big.ts": 501, "core/huge.ts": 590 }, "big.ts grew from 500 to 501 lines"],
    [
      "a listed file that shrank but kept its old count",
      { "big.ts": 500, "core/huge.ts": 580 },
      "core/huge.ts has 580 lines now, fewer than 590",
    ],
  ])("%s is refused", (_, lines, why) => {
    const problems = over450Violations(lines, listed)
    expect(problems.length).toBeGreaterThanOrEqual(1)
    expect(problems.join("\n")).toContain(why)
  })

  test("listed files at their counts and the rest at most 450 pass", () => {
    expect(over450Violations({ "big.ts": 500, "core/huge.ts": 590, "core/small.ts": 450 }, listed)).toEqual([])
  })
})

describe("the layout of bench/", () => {
  const files = Object.fromEntries(sources(BENCH).map((f) => [f, readFileSync(join(BENCH, f), "utf8")]))

  test("every bench file sits in a feature's folder or lib/, and imports only its own folder, lib/, src/ and scripts/", () => {
    expect(Object.keys(files).length).toBeGreaterThan(10)
    expect(edgeViolations(files, benchViolation)).toEqual([])
  })

  test.each([
    ["http/emit.ts", 'import { monoNs } from "../events/peer.ts"'],
    ["slots/methods/floor.ts", 'import { main } from "../../soak/soak.ts"'],
    ["lib/child.ts", 'import { Samples } from "../slots/measure.ts"'],
    ["events/cli.ts", 'import { run } from "../../test/support/helpers.ts"'],
    ["micro.ts", 'import { SlotBus } from "../src/index.ts"'], // a loose file at the top of bench/
  ])("bench/%s with `%s` is refused", (file, line) => {
    expect(edgeViolations({ [file]: `${line}\n` }, benchViolation).length).toBe(1)
  })

  test.each([
    ["slots/methods/slotbus.ts", 'import { SlotBus } from "../../../src/index.ts"'],
    ["slots/cc.ts", 'const zig = await import("../../scripts/zig.ts")'],
    ["http/emit.ts", 'import { monoNs } from "../lib/clock.ts"'],
    ["cli.ts", 'return (await import("./events/cli.ts")).main(rest)'],
  ])("bench/%s with `%s` is allowed", (file, line) => {
    expect(edgeViolations({ [file]: `${line}\n` }, benchViolation)).toEqual([])
  })
})

describe("the layout of test/support", () => {
  const rooms = readdirSync(import.meta.dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== "support")
    .map((e) => e.name)
  const tree = { files: ["helpers.ts", "uid.ts", "README.md"], folders: ["core", "http"] }
  const readme = [
    "| `core/` | test/core | … |",
    "| `http/` | test/http | … |",
    "| `helpers.ts` | … |",
    "| `uid.ts` | … |",
  ]

  test("each folder serves a room of test/ and each file at the root is shared, each with its row in the README", () => {
    const entries = readdirSync(SUPPORT, { withFileTypes: true })
    const actual = {
      files: entries.filter((e) => e.isFile()).map((e) => e.name),
      folders: entries.filter((e) => e.isDirectory()).map((e) => e.name),
    }
    expect(actual.folders.length).toBeGreaterThan(5)
    expect(supportViolations(actual, readFileSync(join(SUPPORT, "README.md"), "utf8"), rooms)).toEqual([])
  })

  test.each([
    [
      "a worker loose at the root",
      { ...tree, files: [...tree.files, "api-worker.ts"] },
      readme,
      "api-worker.ts lies loose",
    ],
    ["a folder with no row", { ...tree, folders: [...tree.folders, "leases"] }, readme, "leases/ has no row"],
    [
      "a folder that names no room of test/",
      { ...tree, folders: [...tree.folders, "workers"] },
      [...readme, "| `workers/` | … |"],
      "workers/ names no room of test/",
    ],
    ["a row for a file that moved", { ...tree, files: ["helpers.ts", "README.md"] }, readme, "a row for uid.ts"],
  ])("%s is refused", (_, shape, lines, why) => {
    const problems = supportViolations(shape, lines.join("\n"), rooms)
    expect(problems.length).toBe(1)
    expect(problems[0]).toContain(why)
  })

  test("listed folders of test/'s rooms and listed shared files pass", () => {
    expect(supportViolations(tree, readme.join("\n"), rooms)).toEqual([])
  })
})
