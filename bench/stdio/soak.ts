// `slotbus bench stdio soak`: a `slotbus stdio --listen` bus in its own process, a pool of echo workers, and
// several client processes checking every answer against its request, while workers and clients are SIGKILLed
// and SIGSTOPped at random. This process is the witness: it watches the bus from outside (its RSS and fds from
// /proc, its workers) and probes it with a client of its own. Run as `soak.ts client <socket>`, it is a client.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { killAll, spawn, type Child } from "../lib/child.ts"

const USAGE = `usage: slotbus bench stdio soak [--seconds n] [--clients k] [--instances k] [--chaos-every ms] [--json]

A stdio bus (slotbus stdio --listen) in its own process with a pool of echo workers, and client processes
that keep requests in flight and check every answer. Workers and clients are SIGKILLed and SIGSTOPped at
random; this process watches the bus from outside and probes it with its own client.

  --seconds <n>      how long the chaos lasts (default 60)
  --clients <k>      client processes (default 4)
  --instances <k>    worker instances in the pool (default 3)
  --chaos-every <ms> mean time between two chaos actions (default 400; 0: none)
  --json             the summary as one JSON object

Exits 1 if any answer was wrong or lost, the probe failed, or nothing was answered.`

const ECHO_WORKER = join(import.meta.dir, "echo-worker.ts")
const SLOTBUS = join(import.meta.dir, "..", "..", "bin", "slotbus.ts")
/** A request unanswered this long while its connection stayed open is lost. */
const LOST_MS = 30_000
const LANES = 8

interface ClientReport {
  sent: number
  ok: number
  wrong: number
  errors: Record<string, number>
  /** Requests in flight when the bus closed the connection (a stopped client that fell behind is cut off). */
  cutOff: number
  lost: number
  inFlight: number
  connections: number
  final?: boolean
}

// ── the client process ────────────────────────────────────────────────────────────────────────────────

async function client(path: string): Promise<void> {
  const r: ClientReport = { sent: 0, ok: 0, wrong: 0, errors: {}, cutOff: 0, lost: 0, inFlight: 0, connections: 0 }
  const pending = new Map<number, { text: string; at: number }>()
  let next = 0
  let ending = false
  let socket: Awaited<ReturnType<typeof Bun.connect>> | null = null
  const report = (final = false) =>
    console.log(JSON.stringify({ ...r, inFlight: pending.size, ...(final ? { final } : {}) }))
  const send = () => {
    if (ending || !socket) return
    const id = ++next
    const size = Math.floor(Math.exp(Math.random() * Math.log(16_384)))
    const params = { id, nonce: Math.random().toString(36).slice(2), pad: "p".repeat(size) }
    const text = JSON.stringify(params)
    pending.set(id, { text, at: performance.now() })
    r.sent++
    socket.write(`{"jsonrpc":"2.0","id":${id},"method":"echo","params":${text}}\n`)
  }
  let rest = ""
  const decoder = new TextDecoder()
  const onLine = (line: string) => {
    let m: { id?: unknown; result?: unknown; error?: { code: number } }
    try {
      m = JSON.parse(line)
    } catch {
      return void r.wrong++
    }
    const p = typeof m.id === "number" ? pending.get(m.id) : undefined
    if (!p) return void r.wrong++ // an answer to nothing we asked (or twice)
    pending.delete(m.id as number)
    if (m.error) r.errors[m.error.code] = (r.errors[m.error.code] ?? 0) + 1
    else if (JSON.stringify(m.result) === p.text) r.ok++
    else r.wrong++
    send()
  }
  const connect = async (): Promise<void> => {
    for (;;) {
      try {
        const closed = Promise.withResolvers<void>()
        socket = await Bun.connect({
          unix: path,
          socket: {
            data(_s, chunk) {
              const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
              rest = lines.pop()!
              for (const l of lines) if (l) onLine(l)
            },
            close: () => closed.resolve(),
            error: () => closed.resolve(),
          },
        })
        r.connections++
        rest = ""
        for (let i = 0; i < LANES; i++) send()
        await closed.promise
        socket = null
        r.cutOff += pending.size
        pending.clear()
        if (ending) return
      } catch {
        if (ending) return
      }
      await Bun.sleep(100)
    }
  }
  const watch = setInterval(() => {
    const now = performance.now()
    for (const [id, p] of pending) if (now - p.at > LOST_MS) pending.delete(id), r.lost++, send()
    report()
  }, 500)
  process.on("SIGTERM", async () => {
    ending = true
    const until = performance.now() + LOST_MS
    while (pending.size > 0 && socket && performance.now() < until) await Bun.sleep(20)
    r.lost += pending.size
    pending.clear()
    clearInterval(watch)
    report(true)
    socket?.end()
    process.exit(0)
  })
  await connect()
}

// ── the witness ───────────────────────────────────────────────────────────────────────────────────────

interface Options {
  seconds: number
  clients: number
  instances: number
  chaosEveryMs: number
  json: boolean
}

function parse(argv: string[]): Options | string {
  const o: Options = { seconds: 60, clients: 4, instances: 3, chaosEveryMs: 400, json: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--json") o.json = true
    else if (a === "-h" || a === "--help") return USAGE
    else if (["--seconds", "--clients", "--instances", "--chaos-every"].includes(a)) {
      const v = Number(argv[++i])
      const [min, max] = a === "--seconds" ? [1, 86_400] : a === "--chaos-every" ? [0, 600_000] : [1, 64]
      if (!Number.isInteger(v) || v < min || v > max) return `${a} takes a whole number from ${min} to ${max}`
      if (a === "--seconds") o.seconds = v
      else if (a === "--clients") o.clients = v
      else if (a === "--instances") o.instances = v
      else o.chaosEveryMs = v
    } else return `unknown option ${a}`
  }
  return o
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.push(
        ...readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number),
      )
    } catch {}
  }
  return out
}
const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)]

/** The witness's own client: one request at a time, each answer checked. */
class Probe {
  sent = 0
  ok = 0
  errors = 0
  wrong = 0
  lost = 0
  private stop = false
  private readonly done: Promise<void>
  constructor(path: string) {
    this.done = this.run(path)
  }
  private async run(path: string): Promise<void> {
    let waiting: ((line: string | null) => void) | null = null
    let text = ""
    const socketHandlers = {
      data(_s: unknown, c: Uint8Array) {
        text += new TextDecoder().decode(c)
        const nl = text.indexOf("\n")
        if (nl >= 0) waiting?.(text.slice(0, nl))
      },
      close: () => waiting?.(null),
      error: () => waiting?.(null),
    }
    while (!this.stop) {
      let s
      try {
        s = await Bun.connect({ unix: path, socket: socketHandlers })
      } catch {
        await Bun.sleep(100)
        continue
      }
      while (!this.stop) {
        const nonce = Math.random().toString(36).slice(2)
        text = ""
        const answer = new Promise<string | null>((r) => (waiting = r))
        this.sent++
        s.write(JSON.stringify({ jsonrpc: "2.0", id: this.sent, method: "echo", params: { nonce } }) + "\n")
        let timer: ReturnType<typeof setTimeout> | undefined
        const got = await Promise.race([
          answer,
          new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), LOST_MS))),
        ])
        clearTimeout(timer)
        waiting = null
        if (got === "timeout") this.lost++
        else if (got === null)
          break // cut off: go on with a new connection
        else {
          const m = JSON.parse(got)
          if (m.id === this.sent && m.result?.nonce === nonce) this.ok++
          else if (m.id === this.sent && m.error) this.errors++
          else this.wrong++
        }
        await Bun.sleep(200)
      }
      s.end()
    }
  }
  async close(): Promise<void> {
    this.stop = true
    await this.done
  }
}

/** kill(2) that does not mind a process that is already gone (a worker restarted meanwhile). */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {}
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "client") return client(argv[1]!).then(() => 0)
  const o = parse(argv)
  if (typeof o === "string") {
    ;(o === USAGE ? console.log : console.error)(o === USAGE ? USAGE : `slotbus bench stdio soak: ${o}\n\n${USAGE}`)
    return o === USAGE ? 0 : 2
  }
  const dir = mkdtempSync(join(tmpdir(), "slotbus-stdio-soak-"))
  const path = join(dir, "bus.sock")
  writeFileSync(
    join(dir, "bus.json"),
    JSON.stringify({
      pools: [{ id: "soak", command: process.execPath, args: [ECHO_WORKER], instances: o.instances }],
      limits: {
        max_restarts: 1_000_000,
        restart_window_sec: 1,
        max_output_queue: 1024 * 1024,
        backpressure_timeout_sec: 5,
      },
    }),
  )
  const bus = spawn([
    process.execPath,
    SLOTBUS,
    "stdio",
    "--config",
    join(dir, "bus.json"),
    "--listen",
    `unix:${path}`,
    "--quiet",
  ])
  const clients: Child[] = []
  const finished: ClientReport[] = []
  const chaos = { workerKills: 0, workerStops: 0, clientKills: 0, clientStops: 0 }
  const stopped = new Set<number>()
  const lastReport = (c: Child): ClientReport | null => {
    for (let i = c.lines.length - 1; i >= 0; i--)
      try {
        return JSON.parse(c.lines[i]!)
      } catch {}
    return null
  }
  const startClient = () => clients.push(spawn([process.execPath, import.meta.path, "client", path]))
  try {
    for (let i = 0; i < 200 && !existsSync(path); i++) await Bun.sleep(50)
    if (!existsSync(path)) throw new Error(`the bus did not start listening:\n${bus.output}`)
    await Bun.sleep(500)
    const before = { rssMiB: rssMiB(bus.pid), fds: fdCount(bus.pid), workers: childrenOf(bus.pid).length }
    for (let i = 0; i < o.clients; i++) startClient()
    const probe = new Probe(path)
    await Bun.sleep(1000)
    const rssWarm = rssMiB(bus.pid)
    const end = performance.now() + o.seconds * 1000
    let lastLine = performance.now()
    while (performance.now() < end) {
      await Bun.sleep(o.chaosEveryMs > 0 ? -Math.log(1 - Math.random()) * o.chaosEveryMs : 1000)
      if (o.chaosEveryMs > 0) {
        const action = Math.floor(Math.random() * 4)
        if (action === 0 || action === 1) {
          const pid = pick(childrenOf(bus.pid).filter((p) => !stopped.has(p)))
          if (pid !== undefined) {
            if (action === 0) signal(pid, "SIGKILL"), chaos.workerKills++
            else {
              signal(pid, "SIGSTOP")
              chaos.workerStops++
              stopped.add(pid)
              setTimeout(() => (stopped.delete(pid), signal(pid, "SIGCONT")), 100 + Math.random() * 1900)
            }
          }
        } else {
          const c = pick(clients.filter((c) => c.running && !stopped.has(c.pid)))
          if (c && action === 2) {
            c.signal("SIGKILL")
            await c.exited
            chaos.clientKills++
            const r = lastReport(c)
            if (r) finished.push(r)
            clients.splice(clients.indexOf(c), 1)
            startClient()
          } else if (c) {
            c.signal("SIGSTOP")
            chaos.clientStops++
            stopped.add(c.pid)
            setTimeout(() => (stopped.delete(c.pid), c.signal("SIGCONT")), 100 + Math.random() * 2900)
          }
        }
      }
      if (!o.json && performance.now() - lastLine > 10_000) {
        lastLine = performance.now()
        const sent =
          clients.reduce((n, c) => n + (lastReport(c)?.sent ?? 0), 0) + finished.reduce((n, r) => n + r.sent, 0)
        console.log(
          `${Math.round((end - performance.now()) / 1000)} s left: ${sent} requests sent, bus RSS ${rssMiB(bus.pid).toFixed(1)} MiB, ${fdCount(bus.pid)} fds, ${JSON.stringify(chaos)}`,
        )
      }
    }
    await Bun.sleep(3000) // every SIGSTOP has been undone by now; restarts settle
    const after = { rssMiB: rssMiB(bus.pid), fds: fdCount(bus.pid), workers: childrenOf(bus.pid).length }
    for (const c of clients) c.signal("SIGTERM")
    await Promise.all(clients.map((c) => c.exited))
    for (const c of clients) {
      const r = lastReport(c)
      if (r?.final) finished.push(r)
      else throw new Error(`a client ended without its final report:\n${c.output}`)
    }
    await probe.close()
    await Bun.sleep(500)
    const fdsIdle = fdCount(bus.pid)
    bus.signal("SIGTERM")
    const busExit = await bus.exited
    const sum = (k: "sent" | "ok" | "wrong" | "cutOff" | "lost") => finished.reduce((n, r) => n + r[k], 0)
    const errors: Record<string, number> = {}
    for (const r of finished) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n
    const summary = {
      seconds: o.seconds,
      clients: o.clients,
      instances: o.instances,
      chaos,
      requests: {
        sent: sum("sent"),
        answeredCorrectly: sum("ok"),
        wrong: sum("wrong"),
        errorAnswers: errors,
        cutOffWithConnection: sum("cutOff"),
        lost: sum("lost"),
        unknownAtClientKill: finished.filter((r) => !r.final).reduce((n, r) => n + r.inFlight, 0),
      },
      probe: { sent: probe.sent, ok: probe.ok, errors: probe.errors, wrong: probe.wrong, lost: probe.lost },
      bus: {
        rssMiBBefore: before.rssMiB,
        rssMiBWarm: rssWarm,
        rssMiBAfter: after.rssMiB,
        fdsBefore: before.fds,
        fdsAfterChaos: after.fds,
        fdsIdleAfter: fdsIdle,
        workersBefore: before.workers,
        workersAfter: after.workers,
        exitCode: busExit,
      },
    }
    if (o.json) console.log(JSON.stringify(summary))
    else {
      const q = summary.requests
      console.log(`slotbus bench stdio soak: ${o.seconds} s, ${o.clients} clients, ${o.instances} workers`)
      console.log(
        `chaos: ${chaos.workerKills} worker SIGKILLs, ${chaos.workerStops} worker SIGSTOPs, ${chaos.clientKills} client SIGKILLs, ${chaos.clientStops} client SIGSTOPs`,
      )
      console.log(
        `requests: ${q.sent} sent, ${q.answeredCorrectly} answered correctly, ${q.wrong} wrong, ${q.lost} lost, error answers ${JSON.stringify(q.errorAnswers)}, ${q.cutOffWithConnection} in flight when the bus cut a client off, ~${q.unknownAtClientKill} in flight at a client SIGKILL`,
      )
      console.log(
        `probe: ${probe.sent} sent, ${probe.ok} ok, ${probe.errors} error answers, ${probe.wrong} wrong, ${probe.lost} lost`,
      )
      console.log(
        `bus: RSS ${before.rssMiB.toFixed(1)} MiB before clients, ${rssWarm.toFixed(1)} warm, ${after.rssMiB.toFixed(1)} after; fds ${before.fds} before clients, ${after.fds} after the chaos, ${fdsIdle} with no clients; workers ${before.workers} → ${after.workers}; exit ${busExit}`,
      )
    }
    return failed(summary) ? 1 : 0
  } finally {
    killAll()
    rmSync(dir, { recursive: true, force: true })
  }
}

function failed(s: {
  requests: { wrong: number; lost: number; answeredCorrectly: number }
  probe: { wrong: number; lost: number; ok: number }
}): boolean {
  return (
    s.requests.wrong > 0 ||
    s.requests.lost > 0 ||
    s.requests.answeredCorrectly === 0 ||
    s.probe.wrong > 0 ||
    s.probe.lost > 0 ||
    s.probe.ok === 0
  )
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)))
