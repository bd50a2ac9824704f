// The socket directory's one warning (docs/PROTOCOL.md §13.2): another uid made /tmp/slotbus-<euid> first, so this
// user's socket files are in a fallback. libslotbus finds the fallback on its own; this only says so, once.
import { lstatSync } from "node:fs"
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
