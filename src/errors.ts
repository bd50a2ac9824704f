/** Base class of every error slotbus throws (but UnsupportedRuntimeError, the runtime room's, below slotbus). */
export class SlotBusError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** libslotbus could not be found or loaded for this platform. */
export class NativeLibraryError extends SlotBusError {}

/** The portable backend's socket directory (macOS) cannot be used: the message names it, says what is wrong
 * (type, owner, mode) and how to pick another with SLOTBUS_SOCKET_DIR. */
export class SocketDirError extends SlotBusError {}

/** The request did not complete within its timeout; a late response is discarded. */
export class TimeoutError extends SlotBusError {}

/** The worker serving the request disconnected or died before answering. */
export class WorkerGoneError extends SlotBusError {}

/**
 * An idempotent request was sent again after its worker died holding it, and the worker it was retried on (holding
 * no other caller's request) died holding it too: it is taken for what kills workers (a poison request) and not sent
 * a third time.
 */
export class PoisonRequestError extends WorkerGoneError {}

/** What was called on (a bus, worker, topic, contest) was closed: open it again. Each room throws its own subclass. */
export class ClosedError extends SlotBusError {}

/** What was asked for has no room left (slots and queue, a topic's entries, a contest's table). Each room throws
 * its own subclass, whose message says what to raise or close. */
export class FullError extends SlotBusError {}

/** The bus or worker was closed; open a new one. */
export class BusClosedError extends ClosedError {}

/** Every slot is busy and the wait queue is full: raise `slots` or `queue`, or slow down. */
export class BusFullError extends FullError {}

/** notifySystemd: the service manager's socket ($NOTIFY_SOCKET) kept its queue full; nothing was sent. */
export class NotifyQueueFullError extends FullError {}

/** The message does not fit a slot's arena: raise `maxBodyBytes` on the hub. */
export class PayloadTooLargeError extends SlotBusError {}

/** A request's head (method, path, headers) is over the hub's `maxHeadBytes`: send fewer or shorter headers, or
 * raise it. A `PayloadTooLargeError`; HTTP answers it 431, where a body too large is 413. */
export class HeadTooLargeError extends PayloadTooLargeError {}

/** The peer broke the shared-memory protocol (corrupt region); the connection was dropped. */
export class ProtocolError extends SlotBusError {}

/** The worker's handler threw (or returned something that is not a reply); `message` is the worker's error message. */
export class RemoteError extends SlotBusError {
  /** The remote error's class name (`TypeError`, …), when the worker sent it. */
  readonly remoteName: string | undefined
  /** The remote error's stack, as the worker printed it, when it sent one. */
  readonly remoteStack: string | undefined
  constructor(message: string, options?: ErrorOptions & { remoteName?: string; remoteStack?: string }) {
    super(message, options)
    this.remoteName = options?.remoteName
    this.remoteStack = options?.remoteStack
  }
}

/**
 * An RPC call (`bus.remote()`, `bus.invoke()`) named a function the worker does not expose, or reached a worker
 * that exposes none (one connected with `SlotWorker.connect` instead of `SlotWorker.expose`).
 */
export class UnknownMethodError extends SlotBusError {
  constructor(
    message: string,
    /** The name that was called. */
    readonly method: string,
    /** What the worker exposes (empty when it takes no RPC calls). */
    readonly methods: readonly string[],
  ) {
    super(message)
  }
}

/** No hub is listening under that name (yet). */
export class HubNotFoundError extends SlotBusError {}

/** The peer's uid is not allowed (SO_PEERCRED check). */
export class PeerRefusedError extends SlotBusError {}

/** A feature was opened that needs an optional package this app has not installed; the message says what to run
 * to add it (`bun add` under Bun, `npm install` under Node). */
export class MissingPackageError extends SlotBusError {
  constructor(
    message: string,
    /** The package to add, e.g. "@nats-io/kv". */
    readonly packageName: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }

  /** "`feature` needs the package `name`, …: `add` `name`" (`add`: the runtime's install command, "npm install"). */
  static of(feature: string, name: string, add: string, cause: unknown): MissingPackageError {
    const message = `${feature} needs the package ${name}, which this app has not installed: ${add} ${name}`
    return new MissingPackageError(message, name, { cause })
  }
}

/** The server that carries a bus, worker, topic or contest across hosts cannot be reached (no server at the
 * address, refused, timed out); the message names the address. */
export class RemoteUnavailableError extends SlotBusError {}

/**
 * A pool of workers gave up (its restarts went over their limit) and no worker of it is connected: what would wait
 * for it fails with this (`superviseWorkers` in the core, a stdio bus's pool). Fix the worker and start it again.
 */
export class PoolFailedError extends SlotBusError {
  constructor(
    message: string,
    /** The pool: the bus's name (`superviseWorkers`) or the stdio pool's id. */
    readonly pool: string,
    /** Why it gave up. */
    readonly reason: string,
  ) {
    super(message)
  }
}

/** What to do when the system refuses for want of something, by errno name. */
const SYSTEM_HINTS: Record<string, string> = {
  EMFILE: "this process is at its open-file limit: close some handles, or raise the limit (ulimit -n)",
  ENFILE: "the system is at its open-file limit: close some files, or raise fs.file-max",
  ENOMEM: "the system is out of memory: free some, or use fewer or smaller regions",
}

/**
 * The system refused a call slotbus made for you (out of fds or memory, …): `errno` is the number it gave, as data
 * (positive), `code` its name ("EMFILE"); the message names the call and, when it can, what to do.
 */
export class SystemError extends SlotBusError {
  /** The errno's name, e.g. "EMFILE" ("EUNKNOWN" when this OS has no name for it). */
  readonly code: string

  constructor(
    /** What failed, e.g. `cannot subscribe to "prices"`. */
    what: string,
    /** The errno, positive. */
    readonly errno: number,
    code: string,
  ) {
    const hint = SYSTEM_HINTS[code]
    super(`${what}: ${code} (errno ${errno})${hint ? `; ${hint}` : ""}`)
    this.code = code
  }
}

/** Another hub already listens under this name. */
export class NameInUseError extends SlotBusError {}

/**
 * A name's fronts disagree on `shared`: a plain listen of a name shared fronts hold, or a shared one of a name a
 * plain hub holds (docs/PROTOCOL.md §15). `shared` is what the fronts already there are.
 */
export class SharingMismatchError extends NameInUseError {
  constructor(
    message: string,
    readonly shared: boolean,
  ) {
    super(message)
  }
}

/** `open(name, { create: "never" })` of a topic or contest that nobody holds. */
export class NotFoundError extends SlotBusError {}

/** `open(name, { create: "must" })` of a topic or contest that exists already. */
export class AlreadyExistsError extends SlotBusError {}

/** An existing topic or contest was opened asking for a fixed setting it does not have. */
export class SettingsMismatchError extends SlotBusError {
  constructor(
    message: string,
    /** The setting, e.g. "capacity". */
    readonly setting: string,
    /** What the caller asked for. */
    readonly asked: number,
    /** What the existing topic or contest has. */
    readonly actual: number,
  ) {
    super(message)
  }
}
