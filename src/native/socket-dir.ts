// The socket directory's one warning (docs/PROTOCOL.md §13.2): another uid made /tmp/slotbus-<euid> first, so this
// user's socket files are in a fallback. libslotbus finds the fallback on its own; this only says so, once. And the
// sweep of buses' socket files their dead processes left under names nobody binds again.
import { lstatSync, readdirSync } from "node:fs"
import { dirname } from "node:path"
import { SocketDirError } from "../errors.ts"
import { freeHostName, loadNative } from "./ffi.ts"
import { whyNotPrivateDir } from "./recorder-layout.ts"

let warned = false

/** Once a process, a line on stderr when /tmp/slotbus-<euid> is another uid's (or a link or a file): nothing fails. */
export function warnSocketDirTaken(): void {
  const uid = process.geteuid?.()
  if (warned || uid === undefined || process.env.SLOTBUS_SOCKET_DIR || process.platform === "darwin") return
  const fixed = `/tmp/slotbus-${uid}`
  const st = lstatSync(fixed, { throwIfNoEntry: false })
  if (!st || (st.isDirectory() && st.uid === uid)) return
  warned = true
  console.warn(
    `slotbus: ${whyNotPrivateDir(fixed, uid)}: another user made it first, so this user's buses, topics and contests use a fallback socket directory (docs/PROTOCOL.md §13.2); set SLOTBUS_SOCKET_DIR to a directory of this user's with mode 0700 (systemd: RuntimeDirectory=) to leave /tmp out`,
  )
}

/** The socket directory as libslotbus finds it (§13.2's order: $SLOTBUS_SOCKET_DIR, /tmp/slotbus-<euid>, its
 * fallbacks), made if missing: private to this euid (mode 0700), so nobody else can make a name in it first. Throws
 * SocketDirError when no directory can be used. */
export async function socketDirectory(): Promise<string> {
  await loadNative()
  // the directory of a name nobody binds (a dot): looking at it unlinks nothing anybody listens on
  return dirname(freeHostName("slotbus.", ".").path)
}

/**
 * Removes the socket files of buses named `start…` (`slotbus.<name>` and its control socket's `slotbus-ctl.<name>`)
 * that nobody listens on any more: their process died without closing (kill -9, the OOM killer). A name that no
 * later process binds again (one with a tag of its process in it, as the HTTP hub's buses have) would otherwise
 * keep its files for good. Each is looked at and unlinked under the directory's lock, as a binder does (§13.2,
 * sb_host_free), so a file somebody listens on stays. Best effort: the count removed; a hashed name (a path too
 * long for `sun_path`, §13.2) is not recognised and stays.
 */
export async function sweepDeadBuses(start: string): Promise<number> {
  let swept = 0
  try {
    const dir = await socketDirectory()
    for (const file of readdirSync(dir)) {
      const [, prefix, name] = /^(slotbus\.|slotbus-ctl\.)([A-Za-z0-9._-]{1,64})$/.exec(file) ?? []
      if (!prefix || !name?.startsWith(start)) continue
      if (lstatSync(`${dir}/${file}`, { throwIfNoEntry: false })?.isSocket() && freeHostName(prefix, name).free) swept++
    }
  } catch (e) {
    // an unusable socket directory, or one that went: what binds there next says why
    if (!(e instanceof SocketDirError || (e as NodeJS.ErrnoException).code)) throw e
  }
  return swept
}
