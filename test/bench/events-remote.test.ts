// `slotbus bench events --remote --quick --json`: every method's events all arrive on host B, and the bench leaves
// no network namespace, link or server behind. Needs what test/support/hosts.ts needs (root, ip, nats-server).
import { expect, test } from "bun:test"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { run } from "../support/helpers.ts"
import { hostsSkipReason } from "../support/hosts.ts"
import { pathWithoutSbin } from "../support/tools.ts"

const skip = hostsSkipReason()
if (skip) console.warn(`slotbus bench events --remote is not tested: ${skip}`)
const repo = join(import.meta.dir, "..", "..")

test.skipIf(skip !== null)(
  "bench events --remote: slotbus over NATS (ring and durable stream subscribers) and raw NATS deliver every event across the hosts, and nothing is left behind",
  async () => {
    const r = await run(
      [process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "events", "--remote", "--quick", "--json"],
      {
        cwd: repo,
        env: { ...process.env, PATH: pathWithoutSbin }, // the bench finds ip and nats-server where the check did
        timeoutMs: 150_000,
      },
    )
    if (r.code !== 0) console.error(r.stderr)
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as {
      rows: { method: string; received: number; lagged: number; sent: number; p50us: number; perS: number }[]
      skipped: string[]
    }
    const row = (m: string) => out.rows.find((x) => x.method === m)!
    for (const m of ["slotbus topic over NATS", "slotbus durable stream", "raw NATS pub/sub"]) {
      expect(row(m)).toBeDefined()
      expect(row(m).received + row(m).lagged).toBe(row(m).sent)
      expect(row(m).p50us).toBeGreaterThan(0)
      expect(row(m).perS).toBeGreaterThan(0)
    }
    const ns = readdirSync("/run/netns").filter((n) => n.startsWith("sbbench-"))
    expect(ns).toEqual([])
    expect(readdirSync("/sys/class/net").filter((l) => /^sbb\d+a$/.test(l))).toEqual([])
  },
  160_000,
)
