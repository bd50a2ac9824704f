// The token that guards a TCP listener (any local user can reach a loopback port; only the bus's user can read
// the 0600 token file). A unix socket needs none: its file mode already keeps other users out.
import { lstatSync } from "node:fs"
import { defaultTokenPath, readCheckedToken, writeTokenFile as writeFile } from "../kit/index.ts"
import { ListenError } from "./errors.ts"

export { newToken, removeTokenFile, sameToken } from "../kit/index.ts"

/** Env var holding the token itself (for `slotbus stdio connect`). */
export const STDIO_TOKEN_ENV = "SLOTBUS_STDIO_TOKEN"
/** Env var naming the token file. */
export const STDIO_TOKEN_FILE_ENV = "SLOTBUS_STDIO_TOKEN_FILE"
/** The method of the line a TCP client sends first: {"jsonrpc":"2.0","method":"slotbus/auth","params":{"token":"…"}}. */
export const AUTH_METHOD = "slotbus/auth"

/** `slotbus-stdio-<port>.token` in `$XDG_RUNTIME_DIR` when it is this user's 0700 directory, else in the socket
 * directory (docs/PROTOCOL.md §13.2): never a name in /tmp another uid could make first. */
export const defaultStdioTokenFile = async (port: number) => (await defaultTokenPath("slotbus-stdio", port)).path

/** Writes the token readable by this user only, replacing any file there atomically; ListenError when it cannot. */
export const writeTokenFile = (path: string, token: string) =>
  writeFile(path, token, "stdio listener's token file", ListenError)

/** Reads a token file, refusing one that another user owns or that others could read. */
export function readTokenFile(path: string): string {
  const st = lstatSync(path)
  if (!st.isFile()) throw new TypeError(`${path} is not a regular file; refusing it as a token file`)
  return readCheckedToken(path, st, "token file", TypeError)
}
