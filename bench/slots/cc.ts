// The bench's C programs (bench/slots/floor.c, examples/c-worker), built by build.zig like everything else in the repo.
import { existsSync } from "node:fs"
import { join, resolve } from "node:path"

export const packageRoot = join(import.meta.dir, "..", "..")

export class NoCompilerError extends Error {}

/**
 * `zig build <step>` and the path of the program `exe` it installs. `source` builds the examples step from
 * another C file (into its own prefix, so the example stays as it is).
 */
export async function buildWithZig(step: "floor" | "examples", exe: string, source?: string): Promise<string> {
  const custom = source ? resolve(source) : undefined
  if (custom && !existsSync(custom)) throw new NoCompilerError(`${custom} does not exist`)
  // Loaded when needed: a package installed without scripts/ still runs every other method.
  const zig = await import("../../scripts/zig.ts").catch(() => null)
  if (!zig) throw new NoCompilerError("scripts/zig.ts, which finds zig, is not in this package")
  try {
    const bin = await zig.zigBuild(
      step,
      custom ? { prefix: join(packageRoot, "zig-out", "custom"), args: [`-Dc-worker=${custom}`] } : {},
    )
    return join(bin, exe)
  } catch (e) {
    throw e instanceof zig.ZigNotFoundError ? new NoCompilerError(e.message) : e
  }
}
