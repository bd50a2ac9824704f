// The 0600 token files that guard a TCP endpoint (the HTTP hub's internal routes, a stdio TCP listener): any
// local user can reach a loopback port, only the owner can read the file. Each feature names its own file and
// errors; the file handling is this one.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync, type Stats } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { timingSafeEqual } from "node:crypto"

type Fail = new (message: string) => Error

/** `$XDG_RUNTIME_DIR/<stem>-<port>.token` (a per-user directory), else the same name in the temp dir. */
export function defaultTokenPath(stem: string, port: number): string {
  const runtime = process.env.XDG_RUNTIME_DIR
  const dir = runtime && existsSync(runtime) ? runtime : tmpdir()
  return join(dir, `${stem}-${port}.token`)
}

export function newToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")
}

/** Writes the token readable by this user only, replacing any file there atomically. `what` names the file in errors. */
export function writeTokenFile(path: string, token: string, what: string, fail: Fail): void {
  const tmp = join(dirname(path), `.${process.pid}.${newToken().slice(0, 8)}.tmp`)
  writeFileSync(tmp, token + "\n", { mode: 0o600, flag: "wx" })
  try {
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw new fail(`cannot write the ${what} ${path} (${(e as Error).message}); pass another tokenFile`)
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
