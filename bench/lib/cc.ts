// The bench's C programs (bench/floor.c, examples/c-worker), built by build.zig like everything else in the repo.
import { existsSync } from "node:fs"
import { join, resolve } from "node:path"
import { repoRoot, zigBuild, ZigNotFoundError } from "../../scripts/zig.ts"

export const packageRoot = repoRoot

export class NoCompilerError extends Error {}

/**
 * `zig build <step>` and the path of the program `exe` it installs. `source` builds the examples step from
 * another C file (into its own prefix, so the example stays as it is).
 */
export async function buildWithZig(step: "floor" | "examples", exe: string, source?: string): Promise<string> {
  const custom = source ? resolve(source) : undefined
  if (custom && !existsSync(custom)) throw new NoCompilerError(`${custom} does not exist`)
  try {
    const bin = await zigBuild(step, custom ? { prefix: join(repoRoot, "zig-out", "custom"), args: [`-Dc-worker=${custom}`] } : {})
    return join(bin, exe)
  } catch (e) {
    throw e instanceof ZigNotFoundError ? new NoCompilerError(e.message) : e
  }
}
