// The per-hub token that guards the internal endpoints: written 0600 by the hub, read by workers.
import { lstatSync, statSync } from "node:fs"
import { HubNotFoundError } from "../core/index.ts"
import { defaultTokenPath, readCheckedToken, writeTokenFile as writeFile } from "../kit/index.ts"
import { HubAuthError } from "./errors.ts"

export { newToken, removeTokenFile, sameToken } from "../kit/index.ts"

/** Env var holding the token itself. */
export const TOKEN_ENV = "SLOTBUS_HUB_TOKEN"
/** Env var naming the token file. */
export const TOKEN_FILE_ENV = "SLOTBUS_HUB_TOKEN_FILE"

/** `slotbus-hub-<port>.token` in `$XDG_RUNTIME_DIR` when it is this user's 0700 directory, else in the socket
 * directory (docs/PROTOCOL.md §13.2): never a name in /tmp another uid could make first. `why` says which. */
export const defaultTokenFile = (port: number) => defaultTokenPath("slotbus-hub", port)

/** Writes the token so that only this user can read it, replacing the file atomically. */
export const writeTokenFile = (path: string, token: string) => writeFile(path, token, "hub token file", HubAuthError)

/** Reads a token file, refusing one that others could read or that another user owns. */
export function readTokenFile(path: string): string {
  let st
  try {
    st = lstatSync(path).isSymbolicLink() ? statSync(path) : lstatSync(path)
  } catch {
    // Not an auth failure: the hub is probably not up yet, and the worker keeps waiting for it.
    throw new HubNotFoundError(
      `no hub token file at ${path}; start the hub first, or pass token / tokenFile (or set ${TOKEN_ENV} / ${TOKEN_FILE_ENV})`,
    )
  }
  return readCheckedToken(path, st, "hub token file", HubAuthError)
}
