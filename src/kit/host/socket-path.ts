// A unix socket path made free to bind (serveStatus's, a stdio listener's): only a socket file whose listener is
// gone is removed. Whatever else is there (a file, a directory, a symlink, a live socket, a socket this process
// cannot probe) is someone's: it is refused with an error naming the path and what is there, and left as it is.
import { lstatSync, type Stats, unlinkSync } from "node:fs"
import { connect } from "../../runtime/index.ts"

type Fail = new (message: string) => Error

function what(st: Stats): string {
  if (st.isFile()) return "a regular file"
  if (st.isDirectory()) return "a directory"
  if (st.isSymbolicLink()) return "a symbolic link"
  if (st.isFIFO()) return "a named pipe"
  return "a device file"
}

const codeOf = (e: unknown) => (e as NodeJS.ErrnoException | null)?.code ?? String(e)

/**
 * Frees `path` for a unix socket: nothing there, or a socket file whose connect is refused (ECONNREFUSED: its
 * process died), which is removed. Anything else throws `fail` naming the path and what is there; nothing is
 * removed. `where` starts each message ("serveStatus", "listen").
 */
export async function claimSocketPath(path: string, where: string, fail: Fail): Promise<void> {
  let st: Stats
  try {
    st = lstatSync(path)
  } catch (e) {
    if (codeOf(e) === "ENOENT") return
    throw new fail(`${where}: cannot look at ${path} (${codeOf(e)}); pick another path`)
  }
  if (!st.isSocket())
    throw new fail(`${where}: ${path} exists and is not a socket but ${what(st)}; pick another path or remove it`)
  const probe = await connect({ unix: path, socket: { data() {} } }).then(
    (s) => (s.end(), "live"),
    (e: unknown) => codeOf(e),
  )
  if (probe === "live") throw new fail(`${where}: a server already listens on ${path}; pick another path`)
  if (probe !== "ECONNREFUSED")
    throw new fail(
      `${where}: ${path} is a socket this process cannot probe (${probe}), so it may be live; pick another path`,
    )
  try {
    unlinkSync(path) // stale: its process is gone
  } catch (e) {
    throw new fail(`${where}: cannot remove the stale socket ${path} (${codeOf(e)}); remove it or pick another path`)
  }
}
