// A topic call's failure as libslotbus returns it (a negative errno, as data) made the typed error a caller can
// catch: one table for every call. An errno means something else per call (EPERM is another user's socket on open,
// mprotect on publish), so each call lists its own; any other is a SystemError carrying the errno and its name.
import { PayloadTooLargeError, PeerRefusedError, ProtocolError, TimeoutError } from "../errors.ts"
import { createRefusal, systemError } from "../kit/index.ts"
import { E_SOCKET_DIR, Errno, socketDirError } from "../native/ffi.ts"
import { TopicConst } from "../native/topic-layout.ts"
import { maxEncodedEvent } from "./codec.ts"
import { TopicFullError } from "./errors.ts"

export type TopicCall = "open" | "join" | "subscribe" | "bind" | "publish" | "poll"

/** name: the topic's; n: the call's own figure (a join's timeout in ms, an event's encoded size in bytes). */
type Made = (name: string, n: number, capacity: number) => Error

/** An event over the limit of a topic of `capacity` bytes (§8.3); what: `event "x"`, or its size. */
export function tooLarge(what: string, capacity: number): PayloadTooLargeError {
  const max = maxEncodedEvent(capacity)
  const more =
    max < maxEncodedEvent(TopicConst.MAX_CAPACITY)
      ? "open the topic with a larger capacity"
      : "no capacity takes more: publish where to find the data instead"
  return new PayloadTooLargeError(
    `${what} is over the topic's limit of ${max} bytes encoded (a record is at most a quarter of the capacity and at most 16 MiB − 16 bytes, its 16-byte header included); ${more}`,
  )
}

// Our rendezvous name is a file in our own socket directory (§1.1): only root, or a process of another uid let into
// the directory, can hold it.
const heldByAnother: Made = (name) =>
  new PeerRefusedError(
    `topic "${name}" is held by a process of another uid (its socket file slotbus.topic.${name} is in this user's socket directory); find and stop that process, or use another name`,
  )
const refused =
  (errno: number): Made =>
  (name) =>
    createRefusal(`topic "${name}"`, errno)!

const DOING: Record<TopicCall, (name: string) => string> = {
  open: (name) => `cannot open topic "${name}"`,
  join: (name) => `cannot join topic "${name}"`,
  subscribe: (name) => `cannot subscribe to "${name}"`,
  bind: (name) => `cannot add a rule to topic "${name}"`,
  publish: (name) => `publish to "${name}" failed`,
  poll: (name) => `cannot read topic "${name}"`,
}

const TABLE: Record<TopicCall, [number, Made][]> = {
  open: [
    [E_SOCKET_DIR, (name) => socketDirError(DOING.open(name))],
    [Errno.EPERM, heldByAnother],
    [Errno.ENOENT, refused(Errno.ENOENT)],
    [Errno.EEXIST, refused(Errno.EEXIST)],
  ],
  join: [
    [
      Errno.EAGAIN,
      (name, ms) => new TimeoutError(`topic "${name}": no member answered within ${ms}ms (all stopped or busy?)`),
    ],
    [Errno.EPERM, heldByAnother],
    [TopicConst.E_CORRUPT, (name) => new ProtocolError(`topic "${name}": a member sent a malformed hello or region`)],
  ],
  subscribe: [
    [
      Errno.ENOSPC,
      (name) => new TopicFullError(`topic "${name}" has ${TopicConst.MAX_SUBS} subscribers already; close some`),
    ],
    [E_SOCKET_DIR, (name) => socketDirError(DOING.subscribe(name))],
  ],
  bind: [
    [Errno.ENOSPC, (name) => new TopicFullError(`topic "${name}" has ${TopicConst.MAX_RULES} rules already`)],
    [Errno.EINVAL, () => new TypeError("rule refused: the rule is malformed")],
  ],
  publish: [
    [Errno.EMSGSIZE, (_, n, capacity) => tooLarge(`the event (${n} bytes encoded)`, capacity)],
    [Errno.EINVAL, () => new TypeError("the event is malformed")],
    [
      Errno.ENOSPC,
      (name) =>
        new TopicFullError(
          `topic "${name}" has ${TopicConst.MAX_PUBS} publishers already; close some handles, or publish through one`,
        ),
    ],
  ],
  poll: [[TopicConst.E_CORRUPT, () => new ProtocolError("the topic's ring is corrupt")]],
}
const BY_ERRNO = Object.fromEntries(Object.entries(TABLE).map(([call, rows]) => [call, new Map(rows)])) as Record<
  TopicCall,
  Map<number, Made>
>

/** The error for topic `name`'s `call` that returned `r` (a negative errno, or one of libslotbus's own codes). */
export function topicError(call: TopicCall, r: number, name: string, n = 0, capacity = 0): Error {
  return BY_ERRNO[call].get(r)?.(name, n, capacity) ?? systemError(DOING[call](name), r)
}
