// Processes as another uid (nobody, 65534) for the cross-user tests: setpriv as root, a Bun that needs no home.
export const NOBODY = 65534
const setpriv = Bun.which("setpriv")

export const asNobody = (args: string[]) => [
  setpriv!,
  `--reuid=${NOBODY}`,
  `--regid=${NOBODY}`,
  "--clear-groups",
  ...args,
]
// Bun as nobody: no home to write a cache into.
export const nobodyEnv = { PATH: process.env.PATH, HOME: "/tmp", BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" }

/** Why a test cannot run `file` as nobody here, or null when it can. */
export function whyNotAsNobody(file: string): string | null {
  if (process.getuid?.() !== 0)
    return `needs root to start a process as uid ${NOBODY} (running as uid ${process.getuid?.()})`
  if (!setpriv) return "needs setpriv (util-linux) to start a process as another uid"
  const probe = Bun.spawnSync(
    asNobody([process.execPath, "-e", `require("fs").accessSync(${JSON.stringify(file)}, 4)`]),
    { env: nobodyEnv, stderr: "pipe" },
  )
  if (probe.exitCode !== 0)
    return `uid ${NOBODY} cannot run ${process.execPath} on ${file}: ${probe.stderr.toString().trim()}`
  return null
}
