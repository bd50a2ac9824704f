// A worker's connections: attaching to its hub (retried while the hub is missing or busy), the hub's hello, the
// channel served by a Pump over its intake, the connection lost (and made again with `reconnect`), the drain of a
// graceful close; a shared name's fronts (docs/PROTOCOL.md §15): the root's family, one connection per front; and
// a remote transport's link (§10) in place of them all.
import {
  native,
  Control,
  Errno,
  E_CORRUPT,
  E_SOCKET_DIR,
  ANY_UID,
  socketDirError,
  WIRE_VERSION,
  type Chan,
} from "../../native/ffi.ts"
import { Backoff, checkName, checkNumber, longTimeout, stoppedProcess, systemError } from "../../kit/index.ts"
import { BusClosedError, HubNotFoundError, PeerRefusedError, ProtocolError } from "../../errors.ts"
import { Channel } from "../wire/channel.ts"
import { busName } from "../wire/codec.ts"
import { Pump, STARTUP_POLL_NS } from "../wire/pump.ts"
import type { RemoteLink, RemoteTransport } from "../wire/remote.ts"
import { FrontFamily, frontAddress, MAX_FRONTS, sharedFrontsExist, type FrontRoot } from "../ops/fronts.ts"
import { reportVitals } from "./vitals-report.ts"
import type { Serving } from "./serve.ts"
import { Intake, RemoteIntake } from "./intake.ts"
import type { Lifetime } from "./lifetime.ts"
import type { ConnectOptions, WorkerClosed } from "./options.ts"
import { sleep } from "../../runtime/index.ts"

const { ECONNREFUSED, ECONNRESET, EMFILE, ENFILE, ENOENT, EPERM, EPIPE, EPROTO, EAGAIN, ETIMEDOUT, EUSERS } = Errno
// Attempts to attach start 20 ms apart and spread out to 500 ms: a hub coming back finds its reconnecting
// workers arriving at different moments, and a worker polls a missing hub at most twice a second.
const RETRY = { initialMs: 20, maxMs: 500, jitter: 0.5 }
// No hub, or one dying while we queued on its socket: worth another try.
const RETRYABLE = new Set<number>([ECONNREFUSED, ENOENT, ECONNRESET, EPIPE])
const HELLO_TIMEOUT_MS = 5000

export class Connections {
  private chan: Channel | null = null
  private pump: Pump | null = null
  private intake: Intake | null = null
  private remote: RemoteLink | null = null
  private stopping: Promise<void> | null = null
  private onDrainAck: (() => void) | null = null
  private readonly err = new Int32Array(1)
  // A shared name's fronts (docs/PROTOCOL.md §15): the root's family of connections, one per front; a sibling's root.
  private family: FrontFamily | null = null
  private index = -1
  // A pool's worker takes no request from this front until it serves the one that started it (FrontFamily.untilParent).
  private waiting = false

  constructor(
    /** The SlotWorker these are the connections of: the family's root when it is one. */
    private readonly owner: FrontRoot,
    private readonly name: string,
    private readonly opts: ConnectOptions,
    private readonly serving: Serving,
    private readonly lifetime: Lifetime,
    /** A sibling's root's connections (§15.3), null for a root. */
    private readonly root: Connections | null,
  ) {}

  get connected(): boolean {
    return this.remote ? this.remote.connected : (this.chan?.isOpen ?? false) || (this.family?.connected ?? false)
  }
  get frontIndex(): number {
    return this.chan ? this.index : -1
  }
  get hubPid(): number {
    return this.chan?.peerPid ?? 0
  }
  /** The family's requests answered and handlers running (none without a family). */
  familyStats() {
    return this.family?.stats() ?? { served: 0, active: 0 }
  }

  /** It ended (`c`): the family stops looking for fronts, worker.closed resolves. */
  finish(c: WorkerClosed) {
    this.family?.stop()
    this.lifetime.ended(c)
  }

  /** Serve front k over a connection the family started (§15.3). */
  async adopt(ptr: Chan, k: number): Promise<boolean> {
    const e = await this.finishConnect(ptr, this.opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS)
    if (e !== 0) return false
    if (this.stopping || this.chan) {
      native.sb_close(ptr)
      return false
    }
    this.index = k
    this.serve(new Channel(ptr, "worker"))
    return true
  }

  /** A root just connected: if the name is shared (§15.2), serve every front of it. */
  private joinFamily() {
    if (this.root || this.family || this.remote) return
    if (this.index === 0 && !sharedFrontsExist(this.name, (this.chan?.peerUid ?? -1) >>> 0)) return
    if (!this.family && !this.stopping) this.family = new FrontFamily(this.name, this.owner, this.opts.hubUid)
  }

  /** No front at the plain name: a worker that knows §15 tries the others once. */
  private async anyFront(): Promise<boolean> {
    if (this.root || !sharedFrontsExist(this.name, this.opts.hubUid)) return false
    for (let k = 1; k < MAX_FRONTS && !this.stopping; k++) {
      const ptr = native.sb_connect_start(
        frontAddress(this.name, k),
        this.opts.hubUid ?? ANY_UID,
        this.err,
      ) as Chan | null
      if (ptr && (await this.adopt(ptr, k))) return true
    }
    return false
  }

  /** Serves the hub through the transport given as `remote` (docs/PROTOCOL.md §10). */
  async attachRemote(transport: RemoteTransport) {
    const slots = checkNumber(this.opts.slots, { what: "slots", dflt: 32, min: 1, max: 4096 })
    const heartbeatMs = checkNumber(this.opts.heartbeatMs, { what: "heartbeatMs", dflt: 500, min: 1, max: 60_000 })
    const label = this.opts.host
    // any character but control ones: it goes into hubs' errors, logs and status as it is
    if (label !== undefined)
      checkName(label, { what: "host", where: "SlotWorker.connect", max: 255, chars: CONTROLLESS })
    if (this.opts.closeWhenHubsGone !== undefined && typeof this.opts.closeWhenHubsGone !== "boolean")
      throw new TypeError(`closeWhenHubsGone must be a boolean, got ${typeof this.opts.closeWhenHubsGone}`)
    const lost = (reason: WorkerClosed["reason"], error?: Error) => {
      this.opts.onDisconnect?.(reason)
      this.finish(error ? { reason, error } : { reason })
    }
    this.remote = await transport.serveWorker(new RemoteIntake(this.name, this.serving, lost), {
      heartbeatMs,
      slots,
      closeWhenHubsGone: this.opts.closeWhenHubsGone === true,
      host: label,
    })
    this.opts.onConnect?.(0)
  }

  async attach(waitMs: number) {
    const deadline = performance.now() + waitMs
    const cname = busName(this.name)
    const helloMs = this.opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS
    let busySince = -1 // a hub whose accept queue is full exists: give it helloMs to catch up, whatever waitMs says
    const retry = new Backoff(RETRY)
    for (;;) {
      if (this.stopping) throw new BusClosedError("worker closed while connecting")
      const ptr = native.sb_connect_start(cname, this.opts.hubUid ?? ANY_UID, this.err) as Chan | null
      const e = ptr ? await this.finishConnect(ptr, helloMs) : this.err[0]!
      if (ptr && e === 0) {
        // close() may have come while the hello was on its way: then this connection is not wanted.
        if (this.stopping) {
          native.sb_close(ptr)
          throw new BusClosedError("worker closed while connecting")
        }
        this.index = 0
        return this.serve(new Channel(ptr, "worker"))
      }
      // a front that sent no hello (a stopped leader on the plain name, §15.5): the name's other fronts
      if ((RETRYABLE.has(e) || e === ETIMEDOUT) && (await this.anyFront())) return
      if (e === E_SOCKET_DIR) throw socketDirError(`cannot attach to hub "${this.name}"`)
      if (e === EPERM)
        throw new PeerRefusedError(
          `hub "${this.name}" and this worker (uid ${process.getuid?.()}) do not trust each other's uid; see allowUids / hubUid`,
        )
      if (e === EAGAIN) busySince = busySince < 0 ? performance.now() : busySince
      else busySince = -1
      const now = performance.now()
      const late = now >= deadline && (busySince < 0 || now - busySince >= helloMs)
      if (e === EAGAIN && late)
        throw new HubNotFoundError(
          `hub "${this.name}" kept its connection queue full for ${helloMs}ms (busy, or flooded by another process); try again or raise helloTimeoutMs`,
        )
      if (e === EUSERS && late)
        throw new PeerRefusedError(
          `hub "${this.name}" has as many workers as it allows (maxWorkers / maxWorkersPerUid); wait (waitForHubMs) or raise its caps`,
        )
      if ((e === EMFILE || e === ENFILE) && !ptr) throw systemError(`cannot connect to hub "${this.name}"`, e)
      if ((e === EMFILE || e === ENFILE) && late)
        throw new PeerRefusedError(
          `hub "${this.name}" could not accept this worker: the hub is out of file descriptors (${e === EMFILE ? "EMFILE: its process's open-file limit; raise the front's ulimit -n" : "ENFILE: the system's open-file limit; raise fs.file-max"}), or run fewer workers`,
        )
      if (e === ETIMEDOUT && late)
        throw new HubNotFoundError(
          `hub "${this.name}" took the connection but sent no hello in ${helloMs}ms; is its event loop blocked?`,
        )
      if (e === EPROTO)
        throw new ProtocolError(
          `hub "${this.name}" speaks another version of the slotbus wire protocol than this worker (${WIRE_VERSION}, docs/PROTOCOL.md §1): run the same slotbus release on both sides`,
        )
      if (e === E_CORRUPT)
        throw new ProtocolError(
          `hub "${this.name}" sent a malformed hello or region (its fds, sizes or header are not as docs/PROTOCOL.md §1–§2 say): a slotbus hub of another release, or not a slotbus hub`,
        )
      if (!RETRYABLE.has(e) && e !== EUSERS && e !== EMFILE && e !== ENFILE && e !== ETIMEDOUT && e !== EAGAIN)
        throw new ProtocolError(`cannot attach to hub "${this.name}": error ${-e}`)
      if (late)
        throw new HubNotFoundError(
          `no hub is listening as "${this.name}"; start it first, or pass waitForHubMs / reconnect`,
        )
      if (this.lifetime.parentGone())
        throw new HubNotFoundError(
          `the front that started this worker of "${this.name}" (pid ${this.lifetime.parentPid}) is gone; its pool goes with it`,
        )
      // The last try comes at the give-up time, not a whole (up to 500 ms) delay after it.
      const giveUpAt = busySince < 0 ? deadline : Math.max(deadline, busySince + helloMs)
      await sleep(retry.nextWithin(giveUpAt - now))
    }
  }

  /** Waits for the hub's hello without blocking the event loop: the hub may live on this very thread. */
  private async finishConnect(ptr: Chan, helloMs: number): Promise<number> {
    const deadline = performance.now() + helloMs
    const peer = native.sb_peer_pid(ptr)
    let r: number
    let tries = 0
    while ((r = native.sb_connect_finish(ptr, 0)) === EAGAIN && performance.now() < deadline && !this.stopping) {
      // A stopped front (SIGSTOP) sends no hello until it runs again: a shared name's other fronts serve meanwhile.
      if (++tries % 100 === 0 && stoppedProcess(peer) && sharedFrontsExist(this.name, this.opts.hubUid)) break
      await sleep(1)
    }
    if (r !== 0) native.sb_close(ptr)
    return r === EAGAIN ? ETIMEDOUT : r
  }

  private serve(chan: Channel) {
    this.chan = chan
    const intake = new Intake(chan, this.name, this.serving, (e) => this.lost(chan, "protocol-error", e))
    this.intake = intake
    this.pump = new Pump(chan, this.opts.idle, {
      collect: () => (this.waiting ? 0 : intake.collect()),
      wanted: () => true,
      onRingFlood: (rings, parks) =>
        this.lost(chan, "protocol-error", new ProtocolError(`hub rang the doorbell ${rings} times for ${parks} parks`)),
      onError: () => {},
      startupPollNs: STARTUP_POLL_NS,
      crowded: () => chan.crowded,
      answering: () => this.serving.active > 0,
      keepsOffPeerCpu: true,
    })
    let hubClosing = false
    const seen = new Set<number>()
    chan.watchPeer(
      (bytes) => {
        for (const byte of bytes) {
          // Each control byte is legal once per connection (docs/PROTOCOL.md §1).
          if ((byte !== Control.HUB_CLOSING && byte !== Control.DRAIN_ACK) || seen.has(byte))
            return this.lost(
              chan,
              "protocol-error",
              new ProtocolError(
                `hub sent control byte ${byte} ${seen.has(byte) ? "twice" : "that the protocol does not know"}`,
              ),
            )
          seen.add(byte)
          if (byte === Control.HUB_CLOSING) hubClosing = true
          if (byte === Control.DRAIN_ACK) this.onDrainAck?.()
        }
      },
      () => this.lost(chan, hubClosing ? "hub-closed" : "hub-gone"),
    )
    reportVitals(chan)
    this.opts.onConnect?.(chan.peerPid)
    this.joinFamily()
    // A shared name's family looks for the front that started it; a plain name has one hub.
    if (!this.family) this.lifetime.reached(chan.peerPid)
    const wait = (this.root ?? this).family?.untilParent(chan.peerPid) ?? null
    this.waiting = wait !== null
    const pump = this.pump
    if (wait)
      void wait.then(() => {
        this.waiting = false
        pump.rouse()
        pump.kick()
      })
    else pump.kick()
  }

  private lost(chan: Channel, reason: WorkerClosed["reason"], error?: Error) {
    if (this.chan !== chan) return
    const gone = new DOMException(
      `the hub of "${this.name}" went away (${reason}); nobody waits for this answer`,
      "AbortError",
    )
    this.intake?.drop(gone)
    this.onDrainAck?.()
    this.pump?.stop()
    chan.close()
    this.chan = null
    this.opts.onDisconnect?.(reason)
    if (this.family && !this.stopping)
      return this.family.lost(chan.peerPid, reason === "hub-closed" ? reason : "hub-gone")
    this.lifetime.left(chan.peerPid)
    if (this.opts.reconnect && !this.stopping) {
      this.attach(Infinity).catch((e: Error) =>
        this.finish(this.stopping ? { reason: "closed" } : { reason: "hub-gone", error: e }),
      )
    } else this.finish(error ? { reason, error } : { reason })
  }

  /**
   * Graceful stop (once): the hub is asked to send nothing new, everything it already sent is answered (for up to
   * timeoutMs), then the connection closes; the family's siblings close alike.
   */
  close(timeoutMs: number): Promise<void> {
    this.stopping ??= this.drain(timeoutMs)
    return this.stopping
  }

  private async drain(timeoutMs: number) {
    const deadline = performance.now() + timeoutMs
    const siblings = this.family?.close({ timeoutMs })
    if (this.remote) {
      await this.remote.close(timeoutMs)
      return this.finish({ reason: "closed" })
    }
    const { chan, intake } = this
    if (chan?.sendControl(Control.DRAIN)) {
      // After the ack the hub publishes nothing more, so one last collect takes all that is left.
      await new Promise<void>((resolve) => {
        this.onDrainAck = resolve
        longTimeout(resolve, deadline - performance.now()).unref()
      })
      if (chan.isOpen) intake?.collect()
    }
    while (this.serving.active > 0 && this.chan && performance.now() < deadline) await sleep(1)
    if (chan && this.chan === chan) {
      this.pump?.stop()
      chan.close()
      this.chan = null
    }
    await siblings
    this.finish({ reason: "closed" })
  }
}

/** A name class of every character but the C0 controls and DEL. */
const CONTROLLESS = "^\\x00-\\x1f\\x7f"
