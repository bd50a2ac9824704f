// The idle strategy a bench's slotbus hub and workers take from the environment, for docs/perf's runs:
// park|spin|adaptive, or a value starting with "{": the object form, e.g. {"spinMicros":20,"parkAfterMs":1}
// (adaptive's tuning without its parking on a crowded bus). Unset: the library's default.
export const idleFromEnv = (variable: string) => {
  const v = process.env[variable]
  return (v?.startsWith("{") ? JSON.parse(v) : v || undefined) as "park" | undefined
}
