// The 0600 token files that guard a TCP endpoint (the HTTP hub's internal routes, a stdio TCP listener): any
// local user can reach a loopback port, only the owner can read the file. Each feature names its own file and
// errors; the file handling is this one.
import { readFileSync, renameSync, rmSync, writeFileSync, type Stats } from "node:fs"
import { dirname, isAbsolute, join } from "node:path"
import { timingSafeEqual } from "node:crypto"
import { whyNotPrivateDir } from "../../native/recorder-layout.ts"
import { socketDirectory } from "../../native/socket-dir.ts"

type Fail = new (message: string) => Error

/** `<dir>/<stem>-<port>.token`, dir a directory of this user's that no other uid can make a name in first:
 * `$XDG_RUNTIME_DIR` when it is this euid's with mode 0700, else the socket directory (docs/PROTOCOL.md §13.2);
 * `why` says which, in words. */
export async function defaultTokenPath(stem: string, port: number): Promise<{ path: string; why: string }> {
  const file = `${stem}-${port}.token`
  const runtime = process.env.XDG_RUNTIME_DIR
  const euid = process.geteuid?.()
  if (runtime && isAbsolute(runtime) && (euid === undefined || whyNotPrivateDir(runtime, euid) === null))
    return { path: join(runtime, file), why: "$XDG_RUNTIME_DIR" }
  const unset = runtime
    ? `$XDG_RUNTIME_DIR (${runtime}) is not this user's 0700 directory`
    : "$XDG_RUNTIME_DIR is unset"
  return { path: join(await socketDirectory(), file), why: `the socket directory, as ${unset}` }
}

export function newToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")
}

/** Writes the token readable by this user only, replacing any file there atomically. `what` names the file in errors. */
export function writeTokenFile(path: string, token: string, what: string, fail: Fail): void {
  const tmp = join(dirname(path), `.${process.pid}.${newToken().slice(0, 8)}.tmp`)
  const failed = (e: unknown) =>
    new fail(`cannot write the ${what} ${path} (${(e as Error).message}); pass another tokenFile`)
  try {
    writeFileSync(tmp, token + "\n", { mode: 0o600, flag: "wx" }) // its directory missing or not ours: say so too
  } catch (e) {
    throw failed(e)
  }
  try {
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw failed(e)
  }
}

/** Removes the token file if it still holds `token` (a newer owner may have replaced it). */
export function removeTokenFile(path: string, token: string): void {
  try {
    if (readFileSync(path, "utf8").trim() === token) rmSync(path)
  } catch {} // already gone
}

/** The token in the file `st` describes, refusing a file another user owns or others could read, or an empty one. */
export function readCheckedToken(path: string, st: Stats, what: string, fail: Fail): string {
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== uid)
    throw new fail(`${what} ${path} belongs to uid ${st.uid}, not to this user (${uid}); refusing it`)
  if ((st.mode & 0o077) !== 0)
    throw new fail(`${what} ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`)
  const token = readFileSync(path, "utf8").trim()
  if (!token) throw new fail(`${what} ${path} is empty`)
  return token
}

/** Compares in constant time; anything but a string is no token. */
export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== "string" || !given) return false
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
