// `slotbus bench soak`: a hub and several worker processes under random kill -9 and restarts, random sizes up
// to 8 MiB, every answer checked against its request. Run directly, this file is a soak worker.
import { readdirSync, readFileSync } from "node:fs"
import { SlotBus, SlotWorker, type SlotRequest } from "../../src/index.ts"
import { killAll, spawn, type Child } from "../lib/child.ts"

export const SOAK_USAGE = `usage: slotbus bench soak [options]

A hub in this process and several worker processes; workers are killed (kill -9) and restarted at random
while requests of random sizes flow. Every answer is checked against its request.

  --seconds <n>     how long to send requests (default 30)
  --workers <k>     worker processes (default 4)
  --lanes <n>       requests kept in flight by the hub (default 48)
  --slots <n>       slots per worker (default 8, so requests also queue)
  --max-size <s>    largest body, e.g. 8m (default 8m); sizes are log-uniform from 0 up to it
  --timeout <ms>    per-request timeout (default 3000); a request still open after timeout + grace is hung
  --grace <ms>      (default 2000)
  --kill-every <ms> mean time between two kills (default 700; 0: never kill)
  --no-chaos        no early withdrawals (by default 2% of requests get a 1–10 ms timeout, 2% an abort)
  --json            print the summary as one JSON object instead of text
  -h, --help        this text

Exits 1 if any answer was wrong, duplicated or hung, or nothing was answered.`

export class SoakUsageError extends Error {}

export interface SoakOptions {
  seconds: number
  workers: number
  lanes: number
  slots: number
  maxSize: number
  timeoutMs: number
  graceMs: number
  killEveryMs: number
  /** 2% of requests get a 1–10 ms timeout and 2% an abort within 5 ms. */
  chaos: boolean
  json: boolean
  help: boolean
}

function int(text: string | undefined, flag: string, min: number, max: number): number {
  const n = Number(text)
  if (text === undefined || !Number.isInteger(n) || n < min || n > max)
    throw new SoakUsageError(`${flag} takes a whole number from ${min} to ${max}, got ${text ?? "nothing"}`)
  return n
}

function size(text: string | undefined): number {
  const m = /^(\d+)\s*(k|kib|m|mib)?$/i.exec(text ?? "")
  const n = m ? Number(m[1]) * (m[2]?.[0]?.toLowerCase() === "m" ? 1 << 20 : m[2] ? 1024 : 1) : NaN
  if (!(n >= 8 && n <= 32 << 20))
    throw new SoakUsageError(`--max-size takes a size from 8 to 32m, like 8m or 64k, got ${text ?? "nothing"}`)
  return n
}

export function parseSoakArgs(argv: string[]): SoakOptions {
  const o: SoakOptions = {
    seconds: 30,
    workers: 4,
    lanes: 48,
    slots: 8,
    maxSize: 8 << 20,
    timeoutMs: 3000,
    graceMs: 2000,
    killEveryMs: 700,
    chaos: true,
    json: false,
    help: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!
    const eq = raw.startsWith("--") ? raw.indexOf("=") : -1
    const flag = eq > 0 ? raw.slice(0, eq) : raw
    const value = () => (eq > 0 ? raw.slice(eq + 1) : argv[++i])
    switch (flag) {
      case "-h":
      case "--help":
        o.help = true
        break
      case "--json":
        o.json = true
        break
      case "--no-chaos":
        o.chaos = false
        break
      case "--seconds":
        o.seconds = int(value(), flag, 1, 86_400)
        break
      case "--workers":
        o.workers = int(value(), flag, 1, 64)
        break
      case "--lanes":
        o.lanes = int(value(), flag, 1, 4096)
        break
      case "--slots":
        o.slots = int(value(), flag, 1, 256)
        break
      case "--max-size":
        o.maxSize = size(value())
        break
      case "--timeout":
        o.timeoutMs = int(value(), flag, 10, 600_000)
        break
      case "--grace":
        o.graceMs = int(value(), flag, 0, 600_000)
        break
      case "--kill-every":
        o.killEveryMs = int(value(), flag, 0, 3_600_000)
        break
      default:
        throw new SoakUsageError(`unknown option ${raw}`)
    }
  }
  return o
}

// ---- the request pattern and the worker's transform ----

/** Every byte of an answer is its request's byte XOR this. */
const FLIP = 0xa5
const FLIP32 = 0xa5a5a5a5 | 0

/** A body only request `id` has: the id in its first 8 bytes, then xorshift32 words seeded by the id. */
export function pattern(id: number, n: number): Uint8Array {
  const b = new Uint8Array(n)
  const words = new Uint32Array(b.buffer, 0, n >>> 2)
  let x = (Math.imul(id, 0x9e3779b1) ^ 0x2545f491) | 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x
  }
  for (let i = words.length * 4; i < n; i++) b[i] = (id + i) & 0xff
  if (n >= 8) new DataView(b.buffer).setFloat64(0, id, true)
  return b
}

/** Writes `src` XOR FLIP into `dst` (same length), a word at a time where both are aligned. */
export function flip(src: Uint8Array, dst: Uint8Array) {
  let i = 0
  if (src.byteOffset % 4 === 0 && dst.byteOffset % 4 === 0) {
    const n = src.length >>> 2
    const s = new Uint32Array(src.buffer, src.byteOffset, n)
    const d = new Uint32Array(dst.buffer, dst.byteOffset, n)
    for (let k = 0; k < n; k++) d[k] = s[k]! ^ FLIP32
    i = n * 4
  }
  for (; i < src.length; i++) dst[i] = src[i]! ^ FLIP
}

/** "ok", or what is wrong with `answer` as the transform of `sent`; `other` is the id the answer carries. */
export function check(sent: Uint8Array, answer: Uint8Array): { ok: true } | { ok: false; other: number | null } {
  const carried = () => {
    if (answer.length < 8) return null
    const head = new Uint8Array(8)
    flip(answer.subarray(0, 8), head)
    const id = new DataView(head.buffer).getFloat64(0, true)
    return Number.isSafeInteger(id) ? id : null
  }
  if (answer.length !== sent.length) return { ok: false, other: carried() }
  let i = 0
  if (answer.byteOffset % 4 === 0) {
    const n = sent.length >>> 2
    const s = new Uint32Array(sent.buffer, sent.byteOffset, n)
    const a = new Uint32Array(answer.buffer, answer.byteOffset, n)
    for (let k = 0; k < n; k++) if ((s[k]! ^ FLIP32) !== (a[k]! | 0)) return { ok: false, other: carried() }
    i = n * 4
  }
  for (; i < sent.length; i++) if ((sent[i]! ^ FLIP) !== answer[i]) return { ok: false, other: carried() }
  return { ok: true }
}

// ---- the hub side ----

export interface SoakResult {
  seconds: number
  workers: number
  sent: number
  correct: number
  wrong: number
  duplicated: number
  hung: number
  /** Settled after being counted hung. */
  late: number
  rejections: Record<string, number>
  bytes: number
  kills: number
  restarts: number
  rss_mib: { start: number; warm: number; end: number; peak: number }
  fds: { start: number; end: number }
  /** Workers the hub serves at the end, once the pool is refilled: the `workers` asked for. */
  workersAtEnd: number
  /** The first few problems, for the report. */
  problems: string[]
}

const rssMiB = () => {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync("/proc/self/status", "utf8"))
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN
}
const fdCount = () => readdirSync("/proc/self/fd").length

/** Runs the soak and resolves with its counts; `log` gets progress lines. */
export async function runSoak(o: SoakOptions, log: (line: string) => void = () => {}): Promise<SoakResult> {
  const name = `soak-${process.pid}-${Date.now().toString(36)}`
  const bus = await SlotBus.listen(name, {
    slots: o.slots,
    maxBodyBytes: Math.max(o.maxSize, 1 << 20),
    timeoutMs: o.timeoutMs,
  })
  const r: SoakResult = {
    seconds: o.seconds,
    workers: o.workers,
    sent: 0,
    correct: 0,
    wrong: 0,
    duplicated: 0,
    hung: 0,
    late: 0,
    rejections: {},
    bytes: 0,
    kills: 0,
    restarts: 0,
    rss_mib: { start: 0, warm: 0, end: 0, peak: 0 },
    fds: { start: 0, end: 0 },
    workersAtEnd: 0,
    problems: [],
  }
  const problem = (text: string) => {
    if (r.problems.length < 20) r.problems.push(text)
  }
  const workers = new Set<Child>()
  const startWorker = () => {
    const c = spawn([process.execPath, import.meta.path, name])
    workers.add(c)
    c.proc.exited.then(() => workers.delete(c))
  }
  /** Starts workers until `o.workers` run, and waits until the hub serves exactly those (no dead one still listed). */
  const fillWorkers = async () => {
    while (workers.size < o.workers) startWorker()
    const deadline = performance.now() + 15_000
    const same = () => {
      const served = bus.workers.map((w) => w.pid).sort()
      const live = [...workers].map((c) => c.pid).sort()
      return served.length === live.length && served.every((pid, i) => pid === live[i])
    }
    while (!same()) {
      if (performance.now() > deadline) throw new Error(`the hub did not settle on ${o.workers} workers within 15 s`)
      await Bun.sleep(20)
    }
  }

  try {
    await fillWorkers()
    // One kill and restart and a few requests before the first reading: Bun opens some fds lazily on first use.
    const first = [...workers][0]!
    first.signal("SIGKILL")
    await first.proc.exited
    await fillWorkers()
    await Promise.all(Array.from({ length: 20 }, (_, i) => bus.call(pattern(-i, 1024)).catch(() => {})))
    await Bun.sleep(300)
    Bun.gc(true)
    r.rss_mib.start = rssMiB()
    r.fds.start = fdCount()

    // Requests not yet settled: id → when it counts as hung. Answered ids, to tell a duplicate from a mix-up.
    const open = new Map<number, { hungAt: number; counted: boolean }>()
    const answered = new Set<number>()
    let nextId = 1
    let sending = true
    const t0 = performance.now()
    const endAt = t0 + o.seconds * 1000

    const watchdog = setInterval(() => {
      const now = performance.now()
      for (const [id, p] of open)
        if (!p.counted && now > p.hungAt) {
          p.counted = true
          r.hung++
          problem(`request ${id} neither resolved nor rejected within ${o.timeoutMs + o.graceMs} ms`)
        }
      r.rss_mib.peak = Math.max(r.rss_mib.peak, rssMiB())
    }, 250)

    const settle = (id: number) => {
      const p = open.get(id)
      open.delete(id)
      if (p?.counted) r.late++
    }
    const judge = (id: number, sent: Uint8Array, answer: Uint8Array) => {
      const c = check(sent, answer)
      if (c.ok) {
        if (answered.has(id)) return (r.duplicated++, problem(`request ${id} was answered twice`))
        answered.add(id)
        r.correct++
        r.bytes += sent.length * 2
        return
      }
      if (c.other !== null && c.other !== id && answered.has(c.other)) {
        r.duplicated++
        problem(`request ${id} (${sent.length} B) got request ${c.other}'s answer again (${answer.length} B)`)
      } else {
        r.wrong++
        problem(
          `request ${id} (${sent.length} B) got a wrong answer (${answer.length} B${c.other !== null && c.other !== id ? `, carrying request ${c.other}'s id` : ""})`,
        )
      }
    }

    const lane = async () => {
      while (sending && performance.now() < endAt) {
        const id = nextId++
        // log-uniform sizes, so both small and multi-MiB bodies come often; 1 in 64 is empty
        const n =
          Math.random() < 1 / 64 ? 0 : Math.min(o.maxSize, Math.floor(2 ** (Math.random() * Math.log2(o.maxSize + 1))))
        const body = pattern(id, n)
        const http = (id & 1) === 0
        // Some requests are withdrawn early on purpose (an abort, a very short timeout): their slots are reused
        // while a late answer may still come, which is where a mix-up would show.
        const chaos = o.chaos ? Math.random() : 1
        const timeoutMs = chaos < 0.02 ? 1 + Math.floor(Math.random() * 10) : o.timeoutMs
        const abort = chaos >= 0.02 && chaos < 0.04 ? new AbortController() : null
        const abortTimer = abort && setTimeout(() => abort.abort(), Math.random() * 5)
        const opts = { timeoutMs, ...(abort ? { signal: abort.signal } : {}) }
        open.set(id, { hungAt: performance.now() + timeoutMs + o.graceMs, counted: false })
        r.sent++
        try {
          if (http) {
            const res = await bus.request(
              { method: "POST", path: `/soak/${id}`, headers: { "x-soak-id": String(id) }, body },
              opts,
            )
            settle(id)
            const echoedId = headerOf(res.headers, "x-soak-id"),
              echoedPath = headerOf(res.headers, "x-soak-path")
            if (res.status !== 200 || echoedId !== String(id) || echoedPath !== `/soak/${id}`) {
              if (answered.has(Number(echoedId))) r.duplicated++
              else r.wrong++
              problem(`request ${id} got status ${res.status}, x-soak-id ${echoedId}, x-soak-path ${echoedPath}`)
              continue
            }
            judge(id, body, res.body)
          } else {
            const answer = await bus.call(body, opts)
            settle(id)
            judge(id, body, answer)
          }
        } catch (e) {
          settle(id)
          const kind = e instanceof Error ? e.name : typeof e
          r.rejections[kind] = (r.rejections[kind] ?? 0) + 1
          if (kind === "BusFullError") await Bun.sleep(1)
        } finally {
          clearTimeout(abortTimer ?? undefined)
        }
      }
    }

    // kill -9 a random worker every ~killEveryMs; a replacement follows after up to 500 ms
    let killer: ReturnType<typeof setTimeout> | undefined
    const scheduleKill = () => {
      if (o.killEveryMs === 0) return
      killer = setTimeout(
        () => {
          const live = [...workers]
          const victim = live[Math.floor(Math.random() * live.length)]
          if (victim && sending) {
            // out of the pool at once: a kill before its exit is seen would pick it again and start a second
            // replacement (the pool grew by one each time: 6 workers of 4 after 40 s of --kill-every 300)
            workers.delete(victim)
            victim.signal("SIGKILL")
            r.kills++
            setTimeout(() => {
              if (!sending) return
              startWorker()
              r.restarts++
            }, Math.random() * 500)
          }
          scheduleKill()
        },
        o.killEveryMs * (0.2 + 1.6 * Math.random()),
      )
    }
    scheduleKill()

    let lastLog = t0
    const progress = setInterval(() => {
      const now = performance.now()
      if (now - lastLog < 4900) return
      lastLog = now
      log(
        `${((now - t0) / 1000).toFixed(0)} s: sent ${r.sent}, correct ${r.correct}, wrong ${r.wrong}, duplicated ${r.duplicated}, hung ${r.hung}, kills ${r.kills}, rss ${rssMiB()} MiB`,
      )
    }, 1000)
    const warm = setTimeout(() => (r.rss_mib.warm = rssMiB()), Math.min(10_000, o.seconds * 100))

    const lanes = Array.from({ length: o.lanes }, lane)
    await Bun.sleep(Math.max(0, endAt - performance.now()))
    sending = false
    clearTimeout(killer)
    clearTimeout(warm)
    // Every request still out settles within its timeout; those that do not by timeout + grace are hung.
    const finished = Promise.all(lanes)
    const limit = Bun.sleep(o.timeoutMs + o.graceMs + 500)
    await Promise.race([finished, limit])
    clearInterval(watchdog)
    clearInterval(progress)
    for (const [id, p] of open)
      if (!p.counted) {
        r.hung++
        problem(`request ${id} never settled`)
      }

    await fillWorkers()
    await Bun.sleep(300) // killed workers' stdio pipes close once their exit is reaped
    Bun.gc(true)
    r.rss_mib.end = rssMiB()
    r.rss_mib.warm ||= r.rss_mib.end
    r.rss_mib.peak = Math.max(r.rss_mib.peak, r.rss_mib.start, r.rss_mib.end)
    r.fds.end = fdCount()
    r.workersAtEnd = bus.workerCount
    return r
  } finally {
    for (const c of workers) c.signal("SIGKILL")
    killAll()
    await bus.close({ drain: false })
  }
}

export function soakFailed(r: SoakResult): boolean {
  return r.wrong > 0 || r.duplicated > 0 || r.hung > 0 || r.correct === 0
}

export function renderSoak(r: SoakResult, o: SoakOptions): string {
  const rej =
    Object.entries(r.rejections)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(", ") || "none"
  const lines = [
    `slotbus soak · ${r.seconds} s · ${r.workers} workers × ${o.slots} slots · ${o.lanes} in flight · bodies 0–${o.maxSize >= 1 << 20 ? `${o.maxSize / (1 << 20)} MiB` : `${o.maxSize} B`} · timeout ${o.timeoutMs} ms + ${o.graceMs} ms grace`,
    `sent ${r.sent}  correct ${r.correct}  wrong ${r.wrong}  duplicated ${r.duplicated}  hung ${r.hung}${r.late ? ` (${r.late} settled late)` : ""}`,
    `rejections: ${rej}`,
    `workers: ${r.kills} killed with kill -9, ${r.restarts} restarted, ${r.workersAtEnd} at the end; ${(r.bytes / 2 ** 30).toFixed(2)} GiB checked, ${Math.round(r.sent / r.seconds)} requests/s`,
    `hub RSS: start ${r.rss_mib.start} MiB, after warm-up ${r.rss_mib.warm} MiB, end ${r.rss_mib.end} MiB, peak ${r.rss_mib.peak} MiB · hub fds: start ${r.fds.start}, end ${r.fds.end}`,
    ...r.problems.map((p) => `problem: ${p}`),
    soakFailed(r)
      ? "FAILED: wrong, duplicated or hung answers (or none correct)"
      : "OK: every answer matched its request",
  ]
  return lines.join("\n") + "\n"
}

/** `slotbus bench soak …`; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let o: SoakOptions
  try {
    o = parseSoakArgs(argv)
  } catch (e) {
    if (!(e instanceof SoakUsageError)) throw e
    process.stderr.write(`slotbus bench soak: ${e.message} (slotbus bench soak --help lists the options)\n`)
    return 2
  }
  if (o.help) {
    process.stdout.write(`${SOAK_USAGE}\n`)
    return 0
  }
  const onSignal = () => (killAll(), process.exit(130))
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  process.on("exit", killAll)
  const r = await runSoak(o, (line) => process.stderr.write(`${line}\n`))
  process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : renderSoak(r, o))
  return soakFailed(r) ? 1 : 0
}

// ---- the worker ----

/** A header from either a plain record or a `Headers`. */
function headerOf(headers: unknown, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined
  return (headers as Record<string, string | undefined>)[name]
}

function answer(req: SlotRequest) {
  const out =
    req.kind === "http"
      ? req.reply(req.body.length, {
          headers: { "x-soak-id": headerOf(req.headers, "x-soak-id") ?? "", "x-soak-path": req.path },
        })
      : req.reply(req.body.length)
  flip(req.body, out)
  return out
}

if (import.meta.main) {
  const worker = await SlotWorker.connect(process.argv[2]!, answer, { waitForHubMs: 10_000 })
  await worker.closed
  process.exit(0)
}
