// The package as a user gets it: the tarball `npm pack` makes, and a machine with bun and nothing else.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { basename, dirname, join } from "node:path"
import { REPO, run, until } from "../helpers.ts"

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
async function packInto(dir: string): Promise<string> {
  await runOk(["npm", "pack", "--pack-destination", dir], REPO, process.env, 240_000)
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"))
  if (!tarball) throw new Error(`npm pack left no .tgz in ${dir}`)
  return join(dir, tarball)
}

/**
 * The package's tarball in `dir`, its path. Within one test run (`npm test`: SLOTBUS_TEST_RUN is set) the repository
 * is packed once, by the first test file that asks, into the run's folder (scripts/leftovers.ts removes it after the
 * run), and copied from there: each pack builds every prebuild again, and two at once would write the same files.
 */
export async function packTarball(dir: string): Promise<string> {
  const runId = process.env.SLOTBUS_TEST_RUN
  if (!runId) return packInto(dir)
  const shared = join(tmpdir(), `slotbus-run-${runId}`, "pack")
  const done = join(shared, "done")
  const failed = join(shared, "failed")
  mkdirSync(dirname(shared), { recursive: true })
  let first = true
  try {
    mkdirSync(shared) // the one that makes it packs
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    first = false
  }
  if (first) {
    try {
      writeFileSync(done, await packInto(mkdtempSync(join(shared, "out-"))))
    } catch (e) {
      writeFileSync(failed, String(e))
      throw e
    }
  }
  await until(() => existsSync(done) || existsSync(failed), "the run's tarball is packed", 300_000, 100)
  if (existsSync(failed)) throw new Error(`packing for this run failed:\n${readFileSync(failed, "utf8")}`)
  const tarball = readFileSync(done, "utf8")
  const copy = join(dir, basename(tarball))
  copyFileSync(tarball, copy)
  return copy
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
