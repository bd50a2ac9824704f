// Checks that need a tool from apt (gcc for the sanitizer builds, spin for the models) skip themselves where it
// is missing, with the command that installs it, unless SLOTBUS_REQUIRE_TOOLS=1 (.ci/run sets it): then they
// run and fail, so CI runs every check.

/** Why a check needing `tools` cannot run here, or null. */
export function toolSkipReason(...tools: string[]): string | null {
  if (process.env.SLOTBUS_REQUIRE_TOOLS === "1") return null
  const missing = tools.filter((t) => !Bun.which(t))
  return missing.length ? `needs ${missing.join(" and ")}: apt-get install -y ${missing.join(" ")}` : null
}

/** Logs why a check is skipped (bun test prints skipped tests without a reason). */
export function sayWhySkipped(what: string, reason: string | null): void {
  if (reason) console.warn(`skipped: ${what} (${reason})`)
}
