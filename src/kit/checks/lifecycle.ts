// Explicit open/create lifecycles (iceoryx2's open / create / open_or_create), shared by topics and contests.
import { AlreadyExistsError, NotFoundError, SettingsMismatchError } from "../../errors.ts"
import { Errno } from "../../native/ffi.ts"

/** Whether open() may create what it opens: join or create (the default), join only, create only. */
export type CreateMode = "if-missing" | "never" | "must"

/** The `create` option of Topic.open and Contest.open (undefined: "if-missing"). */
export function checkCreate(create: unknown, where: string): CreateMode {
  if (create === undefined) return "if-missing"
  if (create === "if-missing" || create === "never" || create === "must") return create
  throw new TypeError(`${where}: create must be "if-missing", "never" or "must", got ${JSON.stringify(create)}`)
}

/** The error for an open refused by its create mode (what: `topic "x"`), or null for any other errno. */
export function createRefusal(what: string, errno: number): Error | null {
  if (errno === Errno.ENOENT)
    return new NotFoundError(`${what} does not exist (create: "never"); open it with create: "if-missing" to create it`)
  if (errno === Errno.EEXIST)
    return new AlreadyExistsError(
      `${what} exists already (create: "must"); join it with create: "if-missing" or "never"`,
    )
  return null
}

/** A joined topic or contest whose fixed `setting` is not what the caller asked for (has: with its unit). */
export function settingMismatch(what: string, setting: string, asked: number, actual: number, has: string) {
  return new SettingsMismatchError(
    `${what} exists with ${has}, not the ${asked} asked for; open it without ${setting} to join it as it is, or use another name`,
    setting,
    asked,
    actual,
  )
}
