// The per-hub token that guards the internal endpoints: written 0600 by the hub, read by workers.
import { existsSync, lstatSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { timingSafeEqual } from "node:crypto"
import { HubNotFoundError } from "../core/index.ts"
import { HubAuthError } from "./errors.ts"

/** Env var holding the token itself. */
export const TOKEN_ENV = "SLOTBUS_HUB_TOKEN"
/** Env var naming the token file. */
export const TOKEN_FILE_ENV = "SLOTBUS_HUB_TOKEN_FILE"

/** `$XDG_RUNTIME_DIR/slotbus-hub-<port>.token` (a per-user directory), else the same name in the temp dir. */
export function defaultTokenFile(port: number): string {
  const runtime = process.env.XDG_RUNTIME_DIR
  const dir = runtime && existsSync(runtime) ? runtime : tmpdir()
  return join(dir, `slotbus-hub-${port}.token`)
}

export function newToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")
}

/** Writes the token so that only this user can read it, replacing the file atomically. */
export function writeTokenFile(path: string, token: string): void {
  const tmp = join(dirname(path), `.${process.pid}.${newToken().slice(0, 8)}.tmp`)
  writeFileSync(tmp, token + "\n", { mode: 0o600, flag: "wx" })
  try {
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw new HubAuthError(`cannot write the hub token file ${path} (${(e as Error).message}); pass another tokenFile`)
  }
}

/** Removes the token file if it still holds `token` (a newer hub may have replaced it). */
export function removeTokenFile(path: string, token: string): void {
  try {
    if (readFileSync(path, "utf8").trim() === token) rmSync(path)
  } catch {} // already gone
}

/** Reads a token file, refusing one that others could read or that another user owns. */
export function readTokenFile(path: string): string {
  let st
  try {
    st = lstatSync(path).isSymbolicLink() ? statSync(path) : lstatSync(path)
  } catch {
    // Not an auth failure: the hub is probably not up yet, and the worker keeps waiting for it.
    throw new HubNotFoundError(`no hub token file at ${path}; start the hub first, or pass token / tokenFile (or set ${TOKEN_ENV} / ${TOKEN_FILE_ENV})`)
  }
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== uid) throw new HubAuthError(`hub token file ${path} belongs to uid ${st.uid}, not to this user (${uid}); refusing it`)
  if ((st.mode & 0o077) !== 0) throw new HubAuthError(`hub token file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`)
  const token = readFileSync(path, "utf8").trim()
  if (!token) throw new HubAuthError(`hub token file ${path} is empty`)
  return token
}

export function sameToken(given: string | null, expected: string): boolean {
  if (!given) return false
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
