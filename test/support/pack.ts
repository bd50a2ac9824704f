// The package as a user gets it: the tarball `npm pack` makes, and a machine with bun and nothing else.
import { mkdirSync, readdirSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { REPO, run } from "./helpers.ts"

/** Runs `cmd` in `cwd` to its end and returns its stdout; throws with its output if it fails. */
export async function runOk(
  cmd: string[],
  cwd: string,
  env: Record<string, string | undefined> = process.env,
  timeoutMs = 60_000,
): Promise<string> {
  const r = await run(cmd, { cwd, env, timeoutMs })
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** `npm pack`s the repository into `dir` (its prepack builds the library and the declarations); the tarball's path. */
export async function packTarball(dir: string): Promise<string> {
  await runOk(["npm", "pack", "--pack-destination", dir], REPO, process.env, 240_000)
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"))
  if (!tarball) throw new Error(`npm pack left no .tgz in ${dir}`)
  return join(dir, tarball)
}

/**
 * An environment whose PATH holds only `tools` (symlinked into `binDir`, made here), so nothing else on this
 * machine can be found: bun alone is a user's machine with Bun, node npm npx sh one without it.
 */
export function onlyTools(binDir: string, tools: Record<string, string>, home: string): Record<string, string> {
  mkdirSync(binDir)
  for (const [name, target] of Object.entries(tools)) symlinkSync(target, join(binDir, name))
  return { PATH: binDir, HOME: home }
}
