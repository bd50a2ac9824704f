// `slotbus bench leases --remote`: claim + release of a cluster contest (docs/PROTOCOL.md §12) against the floor
// it stands on, raw JetStream KV updates on the revision, and Redis SET NX PX with a compare-and-delete release,
// in one run, rounds interleaved. One client process, servers on this machine (loopback): the figures are round
// trips to a local server, the most a lease can cost less than.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { Contest } from "../../src/leases/index.ts"
import { spawn } from "../lib/child.ts"
import { accepting, startRedis } from "../lib/servers.ts"
import { busyWarningsSince, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import { Samples } from "../lib/samples.ts"
import { findTool } from "../lib/tools.ts"
import { redisLock } from "./locks.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

export const REMOTE_USAGE = `usage: slotbus bench leases --remote [--quick] [--nats <url>]

claim + release p50 and p99 of a cluster contest (Contest.open(name, { nats })), raw JetStream KV updates on the
revision (the two writes a claim and a release are), a cluster claim carrying a traceparent, and Redis SET NX PX + compare-and-delete, same run. Starts
nats-server -js (and redis-server, if installed) on free loopback ports unless --nats names a server.`

type Method = "slotbus cluster" | "slotbus cluster, with a traceparent" | "raw KV update/update" | "redis SET NX PX"
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

export async function remoteMain(argv: string[]): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    process.stdout.write(`${REMOTE_USAGE}\n`)
    return 0
  }
  const quick = argv.includes("--quick")
  const given = argv.includes("--nats") ? argv[argv.indexOf("--nats") + 1] : undefined
  const machine = describeMachine()
  const busyBefore = machineBusySeconds()
  const started = performance.now()
  const dir = mkdtempSync(join(tmpdir(), "slotbus-bench-kv-"))
  const port = 20000 + Math.floor(Math.random() * 20000)
  const nats = given
    ? null
    : spawn([findTool("nats-server") ?? "nats-server", "-js", "-sd", dir, "-a", "127.0.0.1", "-p", String(port)])
  const url = given ?? `nats://127.0.0.1:${port}`
  if (nats && !(await accepting(port))) throw new Error(`nats-server did not start on port ${port}: ${nats.output}`)
  const redis = await startRedis()
  const samples = new Map<Method, Samples>()
  try {
    let nc: Awaited<ReturnType<typeof connect>> | undefined
    for (let i = 0; i < 100 && !nc; i++)
      nc = await connect({ servers: url }).catch(() => Bun.sleep(50).then(() => undefined))
    if (!nc) throw new Error(`no NATS server at ${url}`)
    const name = `bench-kv-${process.pid}`
    const contest = await Contest.open(name, { remote: viaNats(nc) })
    const kv = await new Kvm(nc).create(`bench-raw-${process.pid}`, { history: 1 })
    let rev = await kv.create("k", "free")
    const lock = redis ? await redisLock(redis.url, `slotbus-bench-kv-${process.pid}`) : null
    const S = { kind: 1, label: "bench" }
    const methods: [Method, () => Promise<void>][] = [
      [
        "slotbus cluster",
        async () => {
          const r = await contest.tryClaim(S, { owner: "bench", ttlMs: 10_000 })
          if (!r.claimed) throw new Error("the bench's subject was held")
          await r.lease.release()
        },
      ],
      [
        "slotbus cluster, with a traceparent",
        async () => {
          const r = await contest.tryClaim(S, { owner: "bench", ttlMs: 10_000, traceparent: TRACEPARENT })
          if (!r.claimed) throw new Error("the bench's subject was held")
          await r.lease.release()
        },
      ],
      [
        "raw KV update/update",
        async () => {
          rev = await kv.update("k", "held", rev)
          rev = await kv.update("k", "free", rev)
        },
      ],
    ]
    if (lock)
      methods.push([
        "redis SET NX PX",
        async () => {
          if (!(await lock.tryAcquire())) throw new Error("the bench's Redis key was held")
          await lock.release()
        },
      ])
    const n = quick ? 300 : 2000
    for (const [, op] of methods) for (let i = 0; i < 200; i++) await op() // warm up
    for (let round = 0; round < 3; round++)
      for (const [method, op] of methods) {
        const s = samples.get(method) ?? new Samples()
        samples.set(method, s)
        for (let i = 0; i < n; i++) {
          const t = performance.now()
          await op()
          s.record((performance.now() - t) * 1000)
        }
      }
    await contest.close()
    await kv.destroy()
    await (await new Kvm(nc).open(contest.bucket)).destroy()
    await lock?.close()
    await nc.close()
  } finally {
    await redis?.child.kill()
    await nats?.kill()
    rmSync(dir, { recursive: true, force: true })
  }
  const out = (s: string) => process.stdout.write(`${s}\n`)
  out(
    `slotbus bench leases --remote — ${machine.cpu}, ${machine.cores} cores, ${machine.kernel}, bun ${machine.bun}, ${machine.date}, load average ${machine.loadBefore.toFixed(2)} before`,
  )
  for (const w of busyWarningsSince(machine, busyBefore, started)) out(`! ${w}`)
  if (!redis) out("! Redis skipped: redis-server is not installed (apt-get install -y redis-server)")
  const base = samples.get("slotbus cluster")!.percentile(50)
  out("claim + release, one client, servers on loopback        p50 µs    p99 µs   p50 vs slotbus")
  for (const [method, s] of samples)
    out(
      `  ${method.padEnd(52)} ${s.percentile(50).toFixed(0).padStart(6)}  ${s.percentile(99).toFixed(0).padStart(8)}   ${(s.percentile(50) / base).toFixed(2)}×`,
    )
  return 0
}
