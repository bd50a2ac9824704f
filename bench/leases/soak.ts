// `slotbus bench leases soak`: holder processes contend for a few subjects with short leases while they are
// SIGKILLed and SIGSTOPped at random. Each holder writes to a shared "storage" file (one record per subject,
// guarded by flock(2), the storage's own lock) that refuses fencing tokens lower than one it saw, as real
// storage should. A holder that enters while another's lease on the subject has not expired is an overlap;
// a token accepted below an earlier one is a regression. This process is the witness: it starts the
// holders, does the chaos, and reads the storage file at the end. `soak.ts holder <contest> <file> <subjects>`
// is a holder.
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Contest, TimeoutError } from "../../src/leases/index.ts"
import { killAll, spawn, type Child } from "../lib/child.ts"
import { flockLock } from "./locks.ts"

const USAGE = `usage: slotbus bench leases soak [--seconds n] [--holders k] [--subjects k] [--chaos-every ms] [--json]

Holder processes claim a few subjects with 200 ms leases and write to a shared file that refuses stale fencing
tokens, while they are SIGKILLed and SIGSTOPped at random. Counts grants, overlaps (a holder let in while
another's lease was still valid), token regressions and stale writes refused.

  --seconds <n>       how long the chaos lasts (default 60)
  --holders <k>       holder processes (default 6)
  --subjects <k>      subjects they contend for (default 3)
  --chaos-every <ms>  mean time between two chaos actions (default 300; 0: none)
  --json              the summary as one JSON object

Exits 1 on any overlap or token regression, a crashed holder, or no grant at all.`

const KIND = 11
const TTL_MS = 200
const REC = 32 // per subject, u64 each: last token, holder pid, inside (0/1), lease expiry (epoch ms)

interface HolderReport {
  grants: number
  overlaps: number
  regressions: number
  stale: number
  timeouts: number
  final?: boolean
}

/** The storage: one record per subject in a file, read and written under flock, refusing stale tokens. */
class Storage {
  private readonly fd: number
  private readonly lock
  private readonly buf = new BigUint64Array(4)
  private readonly bytes = new Uint8Array(this.buf.buffer)
  constructor(path: string) {
    this.fd = openSync(path, "r+")
    this.lock = flockLock(`${path}.lock`)
  }
  /** Runs fn on the subject's record under the storage lock; fn's changes are written back. */
  with<T>(subject: number, fn: (rec: BigUint64Array) => T): T {
    this.lock.acquire()
    try {
      readSync(this.fd, this.bytes, 0, REC, subject * REC)
      const r = fn(this.buf)
      writeSync(this.fd, this.bytes, 0, REC, subject * REC)
      return r
    } finally {
      this.lock.release()
    }
  }
}

async function holder(name: string, file: string, subjects: number): Promise<void> {
  const contest = await Contest.open(name)
  const storage = new Storage(file)
  const r: HolderReport = { grants: 0, overlaps: 0, regressions: 0, stale: 0, timeouts: 0 }
  let ending = false
  process.on("SIGTERM", () => (ending = true))
  const report = (final = false) => console.log(JSON.stringify({ ...r, ...(final ? { final } : {}) }))
  const timer = setInterval(report, 200)
  while (!ending) {
    const subject = Math.floor(Math.random() * subjects)
    let lease
    try {
      lease = await contest.claim(
        { kind: KIND, label: `s${subject}` },
        { owner: `h${process.pid}`, ttlMs: TTL_MS, timeoutMs: 2000 },
      )
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e
      r.timeouts++
      continue
    }
    r.grants++
    const token = lease.token // a bigint: fencing tokens use all 64 bits
    // enter: the storage refuses a token lower than one it saw (this lease expired and another was granted)
    const entered = storage.with(subject, (rec) => {
      if (token < rec[0]!) return (r.stale++, false)
      if (token === rec[0]) return (r.regressions++, false) // a token granted twice
      // its holder's lease had not expired, and its holder had not died: we were let in while it held
      if (rec[2] === 1n && BigInt(Date.now()) < rec[3]! && lease.from !== "holder-gone") r.overlaps++
      rec[0] = token
      rec[1] = BigInt(process.pid)
      rec[2] = 1n
      rec[3] = BigInt(Math.floor(lease.expiresAt))
      return true
    })
    if (entered) {
      await Bun.sleep(Math.random() * 20) // the critical section: a stop here outlives the lease often
      storage.with(subject, (rec) => {
        if (rec[0] === token) rec[2] = 0n
        else if (rec[0]! < token)
          r.regressions++ // a lower token got in after ours
        else if (lease.held && Date.now() < lease.expiresAt) r.overlaps++ // someone entered while ours was valid
      })
    }
    lease.release()
  }
  clearInterval(timer)
  report(true)
  contest.close()
  process.exit(0)
}

interface Options {
  seconds: number
  holders: number
  subjects: number
  chaosEveryMs: number
  json: boolean
}

function parse(argv: string[]): Options | string {
  const o: Options = { seconds: 60, holders: 6, subjects: 3, chaosEveryMs: 300, json: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--json") o.json = true
    else if (a === "-h" || a === "--help") return USAGE
    else if (["--seconds", "--holders", "--subjects", "--chaos-every"].includes(a)) {
      const v = Number(argv[++i])
      const [min, max] = a === "--seconds" ? [1, 86_400] : a === "--chaos-every" ? [0, 600_000] : [1, 32]
      if (!Number.isInteger(v) || v < min || v > max) return `${a} takes a whole number from ${min} to ${max}`
      if (a === "--seconds") o.seconds = v
      else if (a === "--holders") o.holders = v
      else if (a === "--subjects") o.subjects = v
      else o.chaosEveryMs = v
    } else return `unknown option ${a}`
  }
  return o
}

const lastReport = (c: Child): HolderReport | null => {
  for (let i = c.lines.length - 1; i >= 0; i--)
    try {
      return JSON.parse(c.lines[i]!) as HolderReport
    } catch {}
  return null
}
const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)]

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "holder") return holder(argv[1]!, argv[2]!, Number(argv[3])).then(() => 0)
  const o = parse(argv)
  if (typeof o === "string") {
    ;(o === USAGE ? console.log : console.error)(o === USAGE ? USAGE : `slotbus bench leases soak: ${o}\n\n${USAGE}`)
    return o === USAGE ? 0 : 2
  }
  const dir = mkdtempSync(join(tmpdir(), "slotbus-lease-soak-"))
  const file = join(dir, "storage")
  writeFileSync(file, new Uint8Array(REC * o.subjects))
  const name = `soak-${process.pid}-${Date.now().toString(36)}`
  const contest = await Contest.open(name) // the witness is a member too: the contest outlives every holder
  const holders: Child[] = []
  const ended: HolderReport[] = [] // last reports of killed holders (their last 200 ms are not in them)
  const chaos = { kills: 0, stops: 0 }
  const crashes: string[] = []
  const stopped = new Set<number>()
  const start = () =>
    holders.push(spawn([process.execPath, import.meta.path, "holder", name, file, String(o.subjects)]))
  const replaceCrashed = () => {
    for (const c of holders.filter((c) => !c.running)) {
      crashes.push(`holder ${c.pid}: ${c.output.slice(-1500)}`)
      const r = lastReport(c)
      if (r) ended.push(r)
      holders.splice(holders.indexOf(c), 1)
      start()
    }
  }
  try {
    for (let i = 0; i < o.holders; i++) start()
    const end = performance.now() + o.seconds * 1000
    let lastLine = performance.now()
    while (performance.now() < end) {
      await Bun.sleep(o.chaosEveryMs > 0 ? -Math.log(1 - Math.random()) * o.chaosEveryMs : 1000)
      replaceCrashed()
      const c = o.chaosEveryMs > 0 ? pick(holders.filter((c) => c.running && !stopped.has(c.pid))) : undefined
      if (c && Math.random() < 0.5) {
        c.signal("SIGKILL")
        await c.exited
        chaos.kills++
        const r = lastReport(c)
        if (r) ended.push(r)
        holders.splice(holders.indexOf(c), 1)
        start()
      } else if (c) {
        // longer than the lease, often: the classic fencing case (a holder resumes after its lease expired)
        c.signal("SIGSTOP")
        chaos.stops++
        stopped.add(c.pid)
        setTimeout(() => (stopped.delete(c.pid), c.signal("SIGCONT")), 20 + Math.random() * 980)
      }
      if (!o.json && performance.now() - lastLine > 10_000) {
        lastLine = performance.now()
        const grants = [...holders.map(lastReport), ...ended].reduce((n, r) => n + (r?.grants ?? 0), 0)
        console.log(
          `${Math.round((end - performance.now()) / 1000)} s left: ${grants} grants, ${JSON.stringify(chaos)}`,
        )
      }
    }
    await Bun.sleep(1100) // every SIGSTOP undone
    replaceCrashed()
    for (const c of holders) c.signal("SIGTERM")
    await Promise.all(holders.map((c) => c.exited))
    const finals: HolderReport[] = []
    for (const c of holders) {
      const r = lastReport(c)
      if (!r?.final) throw new Error(`a holder ended without its final report:\n${c.output}`)
      finals.push(r)
    }
    const all = [...finals, ...ended]
    const sum = (k: keyof HolderReport) => all.reduce((n, r) => n + Number(r[k] ?? 0), 0)
    const summary = {
      seconds: o.seconds,
      holders: o.holders,
      subjects: o.subjects,
      ttlMs: TTL_MS,
      chaos,
      grants: sum("grants"),
      overlaps: sum("overlaps"),
      regressions: sum("regressions"),
      staleWritesRefused: sum("stale"),
      claimTimeouts: sum("timeouts"),
      crashes: crashes.length,
      crashOutput: crashes.slice(0, 3),
      contest: contest.stats(),
    }
    if (o.json) console.log(JSON.stringify(summary))
    else {
      console.log(
        `slotbus bench leases soak: ${o.seconds} s, ${o.holders} holders, ${o.subjects} subjects, ${TTL_MS} ms leases`,
      )
      console.log(`chaos: ${chaos.kills} holder SIGKILLs, ${chaos.stops} holder SIGSTOPs (20 ms – 1 s)`)
      console.log(
        `grants: ${summary.grants} (counted to each killed holder's last report); overlaps ${summary.overlaps}, token regressions ${summary.regressions}, stale writes refused by the storage ${summary.staleWritesRefused}, claim timeouts ${summary.claimTimeouts}, crashes ${summary.crashes}`,
      )
      for (const c of summary.crashOutput) console.log(`crash: ${c}`)
    }
    const bad = summary.overlaps > 0 || summary.regressions > 0 || summary.crashes > 0 || summary.grants === 0
    return bad ? 1 : 0
  } finally {
    killAll()
    contest.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)))
