// Where the benches and the tests find the tools they run (nats-server, redis-server, ip, wrk, python3): the one
// lookup both use, so a test that found a tool never runs a bench that cannot (test/support/tools.ts).
import { existsSync } from "node:fs"
import { join } from "node:path"

/** A tool's path: on PATH, or where Debian puts it (/usr/sbin, /sbin: not on every user's PATH); null if absent. */
export function findTool(name: string): string | null {
  return Bun.which(name) ?? ["/usr/sbin", "/sbin", "/usr/bin"].map((d) => join(d, name)).find(existsSync) ?? null
}
