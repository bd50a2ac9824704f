// The client of a bus's control socket (docs/PROTOCOL.md §14): one request to the workers of a bus of this host and
// this user, its answer read as it comes. What `slotbus call` runs on.
import { SlotBusError } from "../../errors.ts"
import { SupervisorError } from "../../kit/index.ts"
import { Errno, loadNative, native } from "../../native/ffi.ts"
import { busName } from "../wire/codec.ts"
import { REQUEST_BODY_MAX, socketOfFd, WireReader, WireWriter, type WireEvent } from "./control-wire.ts"

/**
 * A control call failed: `type` is the bus's error class (TimeoutError, WorkerGoneError, NoWorkersError, …), the
 * control socket's own (BadRequest, TooLarge, Busy, RequestTimeout), or the client's: NoBus (nobody listens under the
 * name), OtherUser (the listener is not of this uid), Refused (the bus closed without a word: it refused this uid),
 * Cut (the connection ended mid-answer), Protocol (the answer is not §14's).
 */
export class ControlCallError extends SlotBusError {
  constructor(
    message: string,
    readonly type: string,
  ) {
    super(message)
  }
}

export interface ControlRequest {
  method?: string
  /** Starts with "/"; the query too. */
  path: string
  headers?: [string, string][]
  body?: Uint8Array
  /** The request's deadline on the bus (0 or absent: the bus's default). */
  timeoutMs?: number
}

export interface ControlAnswer {
  status: number
  headers: [string, string][]
  /** The body as it comes; throws ControlCallError when it was cut off (the trailer said so, or the bus died). */
  body: AsyncIterable<Uint8Array>
  /** Closes the connection (the bus cancels the request if it is still running). */
  close(): void
}

/** A connection to the control socket of the bus `name`: its writer, and the answer's events as they come. */
async function connectControl(name: string) {
  const cname = busName(name)
  await loadNative()
  const fd = native.sb_ctl_connect(cname)
  if (fd === Errno.ECONNREFUSED || fd === Errno.ENOENT)
    throw new ControlCallError(`no bus named "${name}" is listening on this host (as this user)`, "NoBus")
  if (fd === Errno.EPERM)
    throw new ControlCallError(
      `the bus "${name}" belongs to another user: slotbus call reaches only the buses of its own uid`,
      "OtherUser",
    )
  if (fd < 0) throw new ControlCallError(`cannot reach the bus "${name}": errno ${-fd}`, "NoBus")

  const events: WireEvent[] = []
  let ended = false
  let failure: ControlCallError | null = null
  let wake: (() => void) | null = null
  const reader = new WireReader()
  const notify = () => {
    const w = wake
    wake = null
    w?.()
  }
  let writer: WireWriter | null = null
  const socket = await socketOfFd<undefined>(fd, undefined, {
    open: (s) => void (writer = new WireWriter(s)),
    data: (_s, chunk) => {
      try {
        events.push(...reader.push(chunk))
      } catch (e) {
        failure = new ControlCallError(
          `the bus's answer is not as docs/PROTOCOL.md §14 says: ${(e as Error).message}`,
          "Protocol",
        )
      }
      notify()
    },
    drain: () => writer?.drain(),
    close: () => {
      ended = true
      writer?.abandon()
      notify()
    },
    error: () => {
      ended = true
      notify()
    },
  })
  const next = async (): Promise<WireEvent | null> => {
    for (;;) {
      if (events.length > 0) return events.shift()!
      if (failure) throw failure
      if (ended) return null
      await new Promise<void>((r) => (wake = r))
    }
  }
  /** The answer's first line: its head, or the error it says (thrown); `slow`: an answer that comes when work is done. */
  const head = async (slow = false): Promise<Record<string, unknown>> => {
    const first = await next()
    if (first === null) {
      socket.end()
      const uid = process.getuid?.()
      throw slow // a reload's head comes when it is done: its front dying meanwhile is what happened most likely
        ? new ControlCallError(
            `the front went away before it answered (it died mid-reload, or it refused uid ${uid})`,
            "Cut",
          )
        : new ControlCallError(
            `the bus "${name}" closed the connection without an answer: it refused this uid (${uid}), or it died`,
            "Refused",
          )
    }
    if (first.kind !== "line") throw new ControlCallError("the bus's answer does not start with a line", "Protocol")
    if (typeof first.value.error === "string") {
      socket.end()
      throw new ControlCallError(first.value.error, typeof first.value.type === "string" ? first.value.type : "Error")
    }
    return first.value
  }
  return { writer: writer ?? new WireWriter(socket), socket, next, head }
}

/** Sends `req` to the workers of the bus `name` (its control socket) and resolves with the answer's head. */
export async function controlCall(name: string, req: ControlRequest): Promise<ControlAnswer> {
  const { writer, socket, next, head: readHead } = await connectControl(name)
  const body = req.body ?? new Uint8Array(0)
  if (body.length > REQUEST_BODY_MAX)
    throw new ControlCallError(`the body is larger than ${REQUEST_BODY_MAX} bytes (docs/PROTOCOL.md §14.2)`, "TooLarge")
  void (async () => {
    await writer.line({
      v: 1,
      method: req.method ?? "GET",
      path: req.path,
      headers: req.headers ?? [],
      timeoutMs: req.timeoutMs ?? 0,
    })
    await writer.frames(body)
    await writer.end()
  })()

  const head = await readHead()
  if (typeof head.status !== "number") throw new ControlCallError("the bus's answer has no status", "Protocol")
  const headers = Array.isArray(head.headers) ? (head.headers as [string, string][]) : []

  async function* frames(): AsyncIterable<Uint8Array> {
    for (;;) {
      const ev = await next()
      if (ev === null) throw new ControlCallError("the answer was cut off: the bus went away mid-answer", "Cut")
      if (ev.kind === "frame") yield ev.bytes
      else if (ev.kind === "line") {
        socket.end()
        if (ev.value.ok === true) return
        throw new ControlCallError(
          `the answer was cut off: ${String(ev.value.error)}`,
          typeof ev.value.type === "string" ? ev.value.type : "Cut",
        )
      }
    }
  }
  return { status: head.status, headers, body: frames(), close: () => socket.end() }
}

/**
 * Asks the front of the shared name `name` that holds its control socket, its leader, to reload its pool of
 * `command` (§14.4); resolves once that reload did. Throws SupervisorError saying why not.
 */
export async function controlReload(name: string, command: string[], options: object): Promise<void> {
  try {
    const { writer, socket, next, head } = await connectControl(name)
    await writer.line({ v: 1, reload: { ...options, command } })
    await writer.end()
    await head(true)
    for (;;) {
      const ev = await next()
      if (ev === null) throw new ControlCallError("the front that runs the pool went away mid-reload", "Cut")
      if (ev.kind !== "line") continue
      socket.end()
      if (ev.value.ok === true) return
      throw new ControlCallError(String(ev.value.error), typeof ev.value.type === "string" ? ev.value.type : "Error")
    }
  } catch (e) {
    const c = e as ControlCallError
    throw new SupervisorError(
      c.type === "NoBus"
        ? `no front of "${name}" runs its pool now (its leader is being elected, or every front is gone): try again`
        : `the front that runs "${name}"'s pool could not reload it (${c.type ?? "Error"}): ${c.message}`,
    )
  }
}
