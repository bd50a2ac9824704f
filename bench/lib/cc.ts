// Builds the bench's small C programs once per source version, with whatever C compiler this machine has.
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs"
import { homedir, tmpdir } from "node:os"
import { join, resolve } from "node:path"

export const packageRoot = join(import.meta.dir, "..", "..")

/** The compiler command (argv prefix), or null. Order: $CC, the zig devDependency, zig, cc, gcc, clang on PATH. */
export function findCompiler(): string[] | null {
  if (process.env.CC) return process.env.CC.split(/\s+/).filter(Boolean)
  const zigDev = join(packageRoot, "node_modules", "@ryoppippi", "zig-linux-x64", "zig")
  if (existsSync(zigDev)) return [zigDev, "cc"]
  const zig = Bun.which("zig")
  if (zig) return [zig, "cc"]
  for (const cc of ["cc", "gcc", "clang"]) {
    const path = Bun.which(cc)
    if (path) return [path]
  }
  return null
}

export class NoCompilerError extends Error {}

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || (homedir() ? join(homedir(), ".cache") : tmpdir())
  const dir = join(base, "slotbus")
  mkdirSync(dir, { recursive: true })
  return dir
}

/**
 * Compiles `sources` (paths relative to the package root) into an executable in the cache and returns its
 * path; rebuilds only when a source, the flags or the compiler change.
 */
export async function buildC(name: string, sources: string[], flags: string[] = []): Promise<string> {
  const cc = findCompiler()
  if (!cc) throw new NoCompilerError("no C compiler (zig, cc, gcc or clang on PATH, or $CC)")
  const paths = sources.map((s) => resolve(packageRoot, s))
  for (const p of paths) if (!existsSync(p)) throw new NoCompilerError(`${p} does not exist`)
  const hash = createHash("sha256").update(JSON.stringify([cc, flags]))
  for (const p of paths) hash.update(readFileSync(p))
  const out = join(cacheDir(), `${name}-${hash.digest("hex").slice(0, 16)}`)
  if (existsSync(out)) return out
  const tmp = `${out}.${process.pid}.tmp`
  const argv = [...cc, "-O2", "-D_GNU_SOURCE", "-I", join(packageRoot, "csrc"), ...flags, "-o", tmp, ...paths]
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" })
  if (r.exitCode !== 0) {
    rmSync(tmp, { force: true })
    throw new Error(`${argv.join(" ")} failed:\n${r.stderr.toString().trim()}`)
  }
  renameSync(tmp, out) // atomic: concurrent runs never see a half-written binary
  return out
}
