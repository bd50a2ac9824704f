// The comparisons that run other projects' packages (tinypool, piscina, the MCP SDK and server-everything) need
// them installed: devDependencies of the slotbus repository, which an installed slotbus does not bring. Looked up
// before anything is measured, so a bench says at once what to add instead of failing halfway.

/** Where `specifier` resolves from the bench, or null when it is not installed. */
export function devPackage(specifier: string): string | null {
  try {
    return Bun.resolveSync(specifier, import.meta.dir)
  } catch {
    return null
  }
}

/** The packages of `specifiers` that are not installed, by package name. */
export function missingDevPackages(specifiers: readonly string[]): string[] {
  const names = specifiers
    .filter((s) => devPackage(s) === null)
    .map((s) =>
      s
        .split("/")
        .slice(0, s.startsWith("@") ? 2 : 1)
        .join("/"),
    )
  return [...new Set(names)]
}

/** What to tell a user whose slotbus has none of `missing` for `comparison` of `bench`. */
export function devPackagesHint(bench: string, comparison: string, missing: readonly string[]): string {
  return (
    `slotbus bench ${bench}: ${comparison} needs ${missing.join(", ")}, not installed (devDependencies of the slotbus ` +
    `repository, not of the package): bun add -d ${missing.join(" ")}, or run it in a clone of the repository ` +
    "after bun install"
  )
}
