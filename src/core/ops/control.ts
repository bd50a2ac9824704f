// A bus's control socket, the hub's side (docs/PROTOCOL.md §14): the socket file slotbus-ctl.<name>, opened with the bus and
// closed with it, where a tool of the bus's own uid (`slotbus call`) sends one request for the bus's workers. The
// peer's uid is checked in C before a byte is read; a request is bounded in size, time and number at once, and goes
// through bus.fetch. Nothing here runs unless someone connects: the accept thread sleeps in poll.
import { Errno, native } from "../../native/ffi.ts"
import {
  ANSWER_STALL_MS,
  CONNECTIONS_MAX,
  headerList,
  REQUEST_ARRIVAL_MS,
  REQUEST_BODY_MAX,
  socketOfFd,
  TIMEOUT_MAX_MS,
  WireError,
  WireReader,
  WireWriter,
} from "./control-wire.ts"
import type { ReloadOptions } from "./front-pool.ts"
import { listening, unlisten } from "./listening.ts"
import { type DoorbellReader, doorbellReader, type Pointer, type Socket } from "../../runtime/index.ts"

/** What the control socket asks of its bus: bus.fetch for a request, and its shared pool's reload (§14.4). */
export interface ControlBus {
  fetch(request: Request, opts: { timeoutMs?: number; signal: AbortSignal }): Promise<Response>
  /** Reloads the bus's running pool of `command` (SharedPools.reload): rejects when it has none. */
  reload(command: unknown, options: ReloadOptions): Promise<void>
}

const ACCEPTS_PER_TURN = 8
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

interface Conn {
  reader: WireReader
  writer: WireWriter
  head: Record<string, unknown> | null
  body: Uint8Array[]
  aborter: AbortController
  timer: ReturnType<typeof setTimeout>
  done: boolean
  gone: boolean
}

export class ControlSocket {
  private readonly err = new Int32Array(2)
  private readonly uid = new Uint32Array(1)
  private watcher: Pointer | null = null
  private reader: DoorbellReader | null = null
  private closing = false
  /** Connections accepted and not yet closed (those turned away included, until they are). */
  private active = 0
  private readonly open = new Set<Socket<Conn>>()
  /** Peers refused for their uid, and connections turned away past CONNECTIONS_MAX. */
  readonly counts = { refused: 0, busy: 0, served: 0 }

  private constructor(
    private readonly name: string,
    private readonly fd: number,
    private readonly bus: ControlBus,
  ) {}

  /**
   * Opens `name`'s control socket, or says why not (once, on stderr) and returns null: the bus works without it. A
   * shared front (docs/PROTOCOL.md §15) finds it held by another front of its name, which serves every worker too.
   */
  static open(name: string, cname: Buffer, bus: ControlBus, shared = false): ControlSocket | null {
    const fd = listening(native.sb_ctl_listen(cname))
    if (fd < 0) {
      if (shared && fd === Errno.EADDRINUSE) return null
      const why = fd === Errno.EADDRINUSE ? "another process holds its name" : `errno ${-fd}`
      console.warn(`slotbus: bus "${name}" has no control socket (slotbus call cannot reach it): ${why}`)
      return null
    }
    const c = new ControlSocket(name, fd, bus)
    const w = native.sb_accept_watch_start(fd, c.err) as Pointer | null
    // the runtime's socket reads (and closes) a copy of the thread's doorbell fd
    const bell = w ? native.sb_fd_dup(native.sb_accept_watch_fd(w)) : -1
    if (!w || bell < 0) {
      if (w) native.sb_accept_watch_stop(w)
      unlisten(fd)
      console.warn(
        `slotbus: bus "${name}" has no control socket: its accept thread did not start (errno ${w ? -bell : -c.err[0]!})`,
      )
      return null
    }
    c.watcher = w
    c.watch(w, bell)
    return c
  }

  /** The accept thread rings its doorbell (docs/PROTOCOL.md §1.2) once, then waits for the rearm. */
  private watch(w: Pointer, bell: number) {
    this.reader = doorbellReader(bell, () => {
      if (this.closing) return
      this.acceptSome()
      setImmediate(() => {
        if (!this.closing) native.sb_accept_watch_rearm(w)
      })
    })
  }

  private acceptSome() {
    for (let i = 0; i < ACCEPTS_PER_TURN && !this.closing; i++) {
      const fd = native.sb_ctl_accept(this.fd, this.uid)
      if (fd === Errno.EPERM) {
        this.counts.refused++
        continue
      }
      if (fd < 0) return // EAGAIN: nobody else waits
      void this.serve(fd)
    }
  }

  private async serve(fd: number) {
    const busy = this.active >= CONNECTIONS_MAX
    this.active++
    const conn: Conn = {
      reader: new WireReader(REQUEST_BODY_MAX),
      writer: null!,
      head: null,
      body: [],
      aborter: new AbortController(),
      timer: null!,
      done: false,
      gone: false,
    }
    let socket: Socket<Conn>
    try {
      socket = await socketOfFd<Conn>(fd, conn, {
        open: (s) => {
          conn.writer = this.writerFor(s)
          this.open.add(s)
        },
        data: (s, chunk) => this.received(s, chunk),
        drain: (s) => s.data.writer.drain(),
        close: (s) => this.closed(s),
        error: (s) => this.closed(s),
      })
    } catch {
      this.active--
      return
    }
    conn.writer ??= this.writerFor(socket)
    this.open.add(socket)
    conn.timer = setTimeout(
      () => this.fail(socket, "RequestTimeout", `the request did not arrive within ${REQUEST_ARRIVAL_MS} ms`),
      REQUEST_ARRIVAL_MS,
    )
    if (busy || this.closing) {
      this.counts.busy++
      this.fail(socket, "Busy", `bus "${this.name}" serves ${CONNECTIONS_MAX} control requests already`)
    }
  }

  /** A client that stops reading its answer is cut off: its place and the answer it held are given back. */
  private writerFor(s: Socket<Conn>): WireWriter {
    return new WireWriter(s, {
      ms: ANSWER_STALL_MS,
      cut: () => {
        s.terminate()
        this.closed(s)
      },
    })
  }

  private received(s: Socket<Conn>, chunk: Uint8Array) {
    const c = s.data
    if (c.done) return
    try {
      for (const ev of c.reader.push(chunk)) {
        if (ev.kind === "line") c.head = ev.value
        else if (ev.kind === "frame") c.body.push(ev.bytes)
        else {
          if (c.reader.leftover > 0) throw new WireError("BadRequest", "bytes after the request's end frame")
          c.done = true
          clearTimeout(c.timer)
          void this.call(s, c)
          return
        }
      }
    } catch (e) {
      if (e instanceof WireError) return this.fail(s, e.type, e.message)
      throw e
    }
  }

  private async call(s: Socket<Conn>, c: Conn) {
    if (c.head!.reload !== undefined) return this.reload(s, c)
    let request: Request
    let timeoutMs: number | undefined
    try {
      ;({ request, timeoutMs } = requestOf(c.head!, c.body))
    } catch (e) {
      return this.fail(s, "BadRequest", (e as Error).message)
    }
    c.body = []
    this.counts.served++
    let res: Response
    try {
      res = await this.bus.fetch(request, { timeoutMs, signal: c.aborter.signal })
    } catch (e) {
      const err = e as Error
      return this.fail(s, err.name || "Error", err.message)
    }
    const headers: [string, string][] = []
    res.headers.forEach((v, k) => headers.push([k, v]))
    await c.writer.line({ status: res.status, headers })
    try {
      if (res.body)
        for await (const chunk of res.body) {
          if (c.aborter.signal.aborted) return
          await c.writer.frames(chunk)
        }
      await c.writer.end()
      await c.writer.line({ ok: true })
    } catch (e) {
      const err = e as Error
      await c.writer.end()
      await c.writer.line({ error: err.message, type: err.name || "Error" })
    }
    s.end()
  }

  /** A standby front's reload of the name's pool (§14.4): this front runs it, so its pool of that command reloads. */
  private async reload(s: Socket<Conn>, c: Conn) {
    const asked = c.head!.reload
    if (c.head!.v !== 1 || typeof asked !== "object" || asked === null || Array.isArray(asked) || c.body.length > 0)
      return this.fail(s, "BadRequest", "a reload request is {v:1, reload:{command, …options}} and no body")
    const { command, ...options } = asked as Record<string, unknown>
    this.counts.served++
    try {
      await this.bus.reload(command, options)
    } catch (e) {
      const err = e as Error
      return this.fail(s, err.name || "Error", err.message)
    }
    await c.writer.line({ status: 200, headers: [] })
    await c.writer.end()
    await c.writer.line({ ok: true })
    s.end()
  }

  /** Says why there is no answer (an error line) and closes. */
  private fail(s: Socket<Conn>, type: string, message: string) {
    s.data.done = true
    clearTimeout(s.data.timer)
    void s.data.writer.line({ error: message, type }).then(() => s.end())
  }

  private closed(s: Socket<Conn>) {
    this.open.delete(s)
    const c = s.data
    if (c.gone) return
    c.gone = true
    this.active--
    clearTimeout(c.timer)
    c.aborter.abort(new Error("the control client went away"))
    c.writer.abandon()
  }

  /** Stops accepting and closes what is open (their requests are cancelled). */
  async close() {
    if (this.closing) return // its fd may be another's by now
    this.closing = true
    this.reader?.close()
    this.reader = null
    if (this.watcher) native.sb_accept_watch_stop(this.watcher)
    this.watcher = null
    unlisten(this.fd)
    for (const s of [...this.open]) s.end()
  }
}

/** The Request a header and body make (§14.2), and its deadline. */
function requestOf(head: Record<string, unknown>, body: Uint8Array[]): { request: Request; timeoutMs?: number } {
  if (head.v !== 1) throw new Error(`v must be 1, got ${JSON.stringify(head.v)}`)
  const method = head.method ?? "GET"
  if (typeof method !== "string" || !METHOD.test(method)) throw new Error("method must be an HTTP method token")
  const path = head.path
  if (typeof path !== "string" || !path.startsWith("/")) throw new Error('path must be a string starting with "/"')
  const headers = headerList(head.headers)
  const t = head.timeoutMs
  if (t !== undefined && (typeof t !== "number" || !Number.isInteger(t) || t < 0 || t > TIMEOUT_MAX_MS))
    throw new Error(`timeoutMs must be an integer from 0 to ${TIMEOUT_MAX_MS}`)
  const bytes = Buffer.concat(body)
  const upper = method.toUpperCase()
  if ((upper === "GET" || upper === "HEAD") && bytes.length > 0) throw new Error(`a ${upper} request has no body`)
  const request = new Request(`http://slotbus${path}`, {
    method,
    headers,
    body: upper === "GET" || upper === "HEAD" ? undefined : bytes,
  })
  return { request, timeoutMs: t === 0 ? undefined : (t as number | undefined) }
}
