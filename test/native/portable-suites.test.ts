// The core, topic and lease suites again, on the portable backend (docs/PROTOCOL.md §13, what macOS runs), in a
// child `bun test` with SLOTBUS_PLATFORM=posix and a socket directory of its own. Left out, each for its reason:
// the uid suites (another uid cannot reach the private socket directory, §13.2), and the suites of NATS across
// simulated hosts and of durable topics (a simulated host shares this host's filesystem, so its socket and lock
// files would meet ours). The single-host NATS suites stay: the bridge election and the local/cluster contest
// markers use lock files there (§11.4, §12.5).
import { expect, test } from "bun:test"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { REPO, run } from "../support/helpers.ts"

const LEFT_OUT = new Set([
  "core/uid.test.ts",
  "events/uid.test.ts",
  "leases/uid.test.ts",
  "events/hosts.test.ts",
  "events/durable.test.ts",
  "events/durable-hosts.test.ts",
  "leases/hosts.test.ts",
  "events/chaos-hosts.test.ts",
  "leases/chaos-hosts.test.ts",
])

const files = ["core", "events", "leases"].flatMap((room) =>
  readdirSync(join(REPO, "test", room))
    .filter((f) => f.endsWith(".test.ts") && !LEFT_OUT.has(`${room}/${f}`))
    .map((f) => `./test/${room}/${f}`),
)

test("the core, topic and lease suites pass on the portable backend", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-posix-suites-"))
  try {
    const env = { ...process.env, SLOTBUS_PLATFORM: "posix", SLOTBUS_SOCKET_DIR: dir }
    const r = await run([process.execPath, "test", ...files], { cwd: REPO, env })
    const out = r.stdout + r.stderr
    const lines = out.split("\n")
    const failed = lines.filter((l) => l.startsWith("(fail)"))
    // what each failure printed before its "(fail)" line, so a CI log says why
    for (const f of new Set(failed))
      console.log(lines.slice(Math.max(0, lines.indexOf(f) - 40), lines.indexOf(f) + 1).join("\n"))
    expect({ code: r.code, failed }).toEqual({ code: 0, failed: [] })
    expect(out).toMatch(/\n\s*[1-9]\d* pass\n(\s*\d+ skip\n)?\s*0 fail\n/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 1_800_000)
