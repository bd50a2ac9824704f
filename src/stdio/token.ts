// The token that guards a TCP listener (any local user can reach a loopback port; only the bus's user can read
// the 0600 token file). A unix socket needs none: its file mode already keeps other users out.
import { existsSync, lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { timingSafeEqual } from "node:crypto"

/** Env var holding the token itself (for `slotbus stdio connect`). */
export const STDIO_TOKEN_ENV = "SLOTBUS_STDIO_TOKEN"
/** Env var naming the token file. */
export const STDIO_TOKEN_FILE_ENV = "SLOTBUS_STDIO_TOKEN_FILE"
/** The method of the line a TCP client sends first: {"jsonrpc":"2.0","method":"slotbus/auth","params":{"token":"…"}}. */
export const AUTH_METHOD = "slotbus/auth"

/** `$XDG_RUNTIME_DIR/slotbus-stdio-<port>.token` (a per-user directory), else the same name in the temp dir. */
export function defaultStdioTokenFile(port: number): string {
  const runtime = process.env.XDG_RUNTIME_DIR
  const dir = runtime && existsSync(runtime) ? runtime : tmpdir()
  return join(dir, `slotbus-stdio-${port}.token`)
}

export function newToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")
}

/** Writes the token readable by this user only, replacing any file there atomically. */
export function writeTokenFile(path: string, token: string): void {
  const tmp = join(dirname(path), `.${process.pid}.${newToken().slice(0, 8)}.tmp`)
  writeFileSync(tmp, token + "\n", { mode: 0o600, flag: "wx" })
  try {
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw new TypeError(`cannot write the stdio listener's token file ${path} (${(e as Error).message}); pass another tokenFile`)
  }
}

/** Removes the token file if it still holds `token` (a newer listener may have replaced it). */
export function removeTokenFile(path: string, token: string): void {
  try {
    if (readFileSync(path, "utf8").trim() === token) rmSync(path)
  } catch {} // already gone
}

/** Reads a token file, refusing one that another user owns or that others could read. */
export function readTokenFile(path: string): string {
  const st = lstatSync(path)
  const uid = process.getuid?.()
  if (!st.isFile()) throw new TypeError(`${path} is not a regular file; refusing it as a token file`)
  if (uid !== undefined && st.uid !== uid) throw new TypeError(`token file ${path} belongs to uid ${st.uid}, not to this user (${uid}); refusing it`)
  if ((st.mode & 0o077) !== 0) throw new TypeError(`token file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`)
  const token = readFileSync(path, "utf8").trim()
  if (!token) throw new TypeError(`token file ${path} is empty`)
  return token
}

export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== "string") return false
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
