// The SystemError for a negative errno a native call returned, named as this OS names it (macOS numbers several
// differently from Linux). Here, not in errors.ts: the shared error base imports nothing.
import { getSystemErrorName } from "node:util"
import { SystemError } from "../../errors.ts"

/** A SystemError saying `what` failed with `r` (a negative errno, as libslotbus returns it). */
export function systemError(what: string, r: number): SystemError {
  const name = r < 0 ? getSystemErrorName(r) : ""
  return new SystemError(what, -r, /^E[A-Z0-9]+$/.test(name) ? name : "EUNKNOWN")
}
