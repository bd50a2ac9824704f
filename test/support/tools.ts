// Checks that need a tool from apt (gcc for the sanitizer builds, spin for the models) skip themselves where it
// is missing, with the command that installs it, unless SLOTBUS_REQUIRE_TOOLS=1 (.ci/run sets it): then they
// run and fail, so CI runs every check.

/** Debian packages named otherwise than the tool they bring. */
const PACKAGE: Record<string, string> = { nm: "binutils", ip: "iproute2", promtool: "prometheus" }

/** Why a check needing `tools` (on PATH, as the check runs them by name) cannot run here, or null. */
export function toolSkipReason(...tools: string[]): string | null {
  if (process.env.SLOTBUS_REQUIRE_TOOLS === "1") return null
  const missing = tools.filter((t) => !Bun.which(t))
  const packages = missing.map((t) => PACKAGE[t] ?? t)
  return missing.length ? `needs ${missing.join(" and ")}: apt-get install -y ${packages.join(" ")}` : null
}

/**
 * PATH without its sbin folders, as a user's PATH is on Debian: where nats-server and ip live. A bench a test runs
 * with it must still find the tools the test's check found (bench/lib/tools.ts, the lookup both use).
 */
export const pathWithoutSbin = (process.env.PATH ?? "")
  .split(":")
  .filter((d) => !/\/sbin\/?$/.test(d))
  .join(":")

/** Logs why a check is skipped (bun test prints skipped tests without a reason). */
export function sayWhySkipped(what: string, reason: string | null): void {
  if (reason) console.warn(`skipped: ${what} (${reason})`)
}

/**
 * How long a test that builds a C step under a sanitizer and runs it may take. A cold zig cache (a new machine, a new
 * user's first `npm test`) builds the ThreadSanitizer runtime first: 4 min on a 2-vCPU VM under the suite's load
 * (measured 2026-12-01: stress-tsan failed a 180 s allowance there). A hang in the run itself is the C test's own
 * watchdog's to report, well within this.
 */
export const SANITIZER_TEST_MS = 600_000
