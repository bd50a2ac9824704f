// The socket files this process listens on as a bus: its name's, its door's and its control socket's (docs/PROTOCOL.md
// §1.1, §14). close() unlinks them; so does this process's exit when close() did not come first (process.exit(), the
// event loop's end, an uncaught error, a stop signal with no handler of the app's; Bun or Node), as a topic's and a
// contest's are. kill -9 still leaves them, to the next listener of the name (§13.2).
import { closeSync } from "node:fs"
import { native } from "../../native/ffi.ts"
import { closeAtExit } from "../../kit/index.ts"

const atExit = new Map<number, () => void>() // each listening fd's forget function (closeAtExit's)

/** `fd` as it is: a listening socket's, whose file goes at exit unless unlisten(fd) comes first, or an error (< 0). */
export function listening(fd: number): number {
  if (fd >= 0) atExit.set(fd, closeAtExit({ close: () => native.sb_unlisten(fd) }))
  return fd
}

/** Unlinks the socket file of the listening socket `fd`, then closes it. */
export function unlisten(fd: number) {
  atExit.get(fd)?.()
  atExit.delete(fd)
  native.sb_unlisten(fd)
  closeSync(fd)
}
