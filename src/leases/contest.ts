// A contest: claim/yield over subjects shared by every local process that opens the same name.
// The table, its atomics and death detection are in C (csrc/lease_*.c, docs/PROTOCOL.md §7); this file turns
// its results into leases (lease.ts), holders and errors, and waits without polling (waiter.ts: a C thread
// sleeps on a futex and rings an eventfd that Bun's event loop watches).
import {
  checkNumber,
  checkOptions,
  closeAtExit,
  madeBy,
  settingMismatch,
  METRICS,
  STATUS,
  type MetricFamily,
  type StatusSection,
} from "../kit/index.ts"
import { contestFamilies } from "./metrics.ts"
import { contestSection } from "./status.ts"
import { ProtocolError, TimeoutError } from "../errors.ts"
import { claimTrace, storedTraceparent, traceClaim } from "./trace.ts"
import {
  HOLDER_BYTES,
  HolderField as H,
  LEASE_LABEL_MAX,
  LEASE_OWNER_MAX,
  LEASE_STAT_WORDS,
  Errno,
  LeaseHow,
  LeaseStat,
  leaseNative as native,
  type ContestPtr,
} from "../native/ffi.ts"
import { ContestClosedError, ContestFrameTooLargeError, ContestFullError, InvalidSubjectError } from "./errors.ts"
import { type ClaimedFrom, type ClaimRef, Lease, LEASE_KEY } from "./lease.ts"
import { checkKind, describe, waitDeadline, MAX_TTL_MS, NOW_MS, type Subject, wellFormed } from "./subject.ts"
import { Waiters } from "./waiter.ts"
import { checkOpen, openTable } from "./contest-open.ts"
import {
  CLAIM_OPTIONS,
  MAX_SPIN_US,
  WAIT_OPTIONS,
  type ClaimOptions,
  type ClaimResult,
  type ContestOptions,
  type ContestStats,
  type Holder,
  type WaitOptions,
} from "./contest-types.ts"
import type { ClusterContest, ClusterContestOptions } from "./cluster.ts"
import { clusterInUse, holdLocalMarker, modeError } from "./mode.ts"

const HOW: Record<number, ClaimedFrom> = {
  [LeaseHow.FREE]: "free",
  [LeaseHow.EXPIRED]: "expired",
  [LeaseHow.DEAD]: "holder-gone",
}
const WATCH_MS = 25
const encoder = new TextEncoder()
const NO_BYTES = new Uint8Array(0)
const decoder = new TextDecoder()

const refs = new WeakMap<Holder, ClaimRef & { contest: Contest }>()

/** One process's membership of a named contest. Open it in every process that competes. */
export class Contest implements Disposable {
  readonly name: string
  private ptr: ContestPtr | null
  private isClosed = false
  private readonly out = new Uint8Array(HOLDER_BYTES)
  private readonly view = new DataView(this.out.buffer)
  private readonly stat = new Float64Array(LEASE_STAT_WORDS)
  private readonly bytes = new Map<string, Uint8Array>()
  private readonly lastText = ["", ""] // label, owner
  private readonly lastBytes: Uint8Array[] = [NO_BYTES, NO_BYTES]
  private readonly watched = new Set<Lease>()
  private readonly waiters: Waiters
  private watcher?: ReturnType<typeof setInterval>
  /** @internal Lets go of the local-contest marker (the portable backend's, §12.5). */
  unmark: () => void = () => {}
  private readonly forgetAtExit: () => void
  /** This process's member index in the table (0 … 255). */
  readonly member: number

  private constructor(key: symbol, name: string, ptr: ContestPtr) {
    madeBy(key, FACTORY, "Contest", "await Contest.open(name, options)")
    this.name = name
    this.ptr = ptr
    this.member = native.sbl_member_index(ptr)
    // a process that exits without close(), or while a claim waits, leaves no socket file or marker
    this.forgetAtExit = closeAtExit({
      close: () => {
        this.close()
        this.free()
      },
    })
    this.waiters = new Waiters({
      name,
      open: () => (this.isClosed ? null : this.ptr),
      ptr: () => this.ptr,
      idle: () => this.freeIfIdle(),
    })
  }

  /**
   * Contend across hosts through a transport passed in as `remote` (`nats(url)`: a JetStream KV bucket, docs/PROTOCOL.md
   * §12): async calls,
   * a TTL on every claim, expiry judged on each contender's own clock. See ClusterContest.
   */
  static open(name: string, opts: ClusterContestOptions): Promise<ClusterContest>
  /** Join the contest `name`, creating it if no process holds it. Nothing is left behind when all leave. */
  static open(name: string, opts?: ContestOptions): Promise<Contest>
  static async open(name: string, opts?: ContestOptions | ClusterContestOptions): Promise<Contest | ClusterContest> {
    if (typeof name !== "string") throw new TypeError(`a contest name is a string, got ${typeof name}`)
    if (opts !== null && typeof opts === "object" && "remote" in opts)
      return (await import("./cluster.ts")).openCluster(name, opts as ClusterContestOptions)
    const { create, joinTimeoutMs, capacity, asked } = checkOpen(name, opts as ContestOptions | undefined)
    const ptr = await openTable(name, capacity, create, joinTimeoutMs)
    const contest = new Contest(FACTORY, name, ptr)
    contest.unmark = holdLocalMarker(name, () => contest.close()) // the local marker (§12.5); then the other's
    if (clusterInUse(name)) {
      contest.close()
      throw modeError(name, "cluster")
    }
    const has = contest.stats().capacity
    if (!asked || has === capacity) return contest
    contest.close()
    throw settingMismatch(`contest "${name}"`, "capacity", capacity, has, `room for ${has} subjects`)
  }

  /** Claim `subject` now (Date.now()). Claimed: a lease; otherwise the holder it yields to. */
  tryClaim(subject: Subject, opts?: ClaimOptions): ClaimResult {
    return this.claimAt(subject, checkOptions(opts, CLAIM_OPTIONS, "tryClaim"), Date.now(), true)
  }

  /** tryClaim with an explicit clock: expiry is judged against `nowMs` (tests, embedders with their own time). */
  tryClaimAt(subject: Subject, opts: ClaimOptions, nowMs: number): ClaimResult {
    return this.claimAt(
      subject,
      checkOptions(opts, CLAIM_OPTIONS, "tryClaimAt"),
      checkNumber(nowMs, { ...NOW_MS, where: "tryClaimAt" }),
      false,
    )
  }

  /** Wait until `subject` can be claimed, then claim it. Woken by a release, an expiry, or the holder's death. */
  async claim(subject: Subject, opts?: WaitOptions): Promise<Lease> {
    opts = checkOptions(opts, WAIT_OPTIONS, "claim")
    const deadline = waitDeadline(opts)
    const again = opts.spinUs ? { ...opts, spinUs: 0 } : opts // spin only before the first sleep
    for (let first = true; ; first = false) {
      opts.signal?.throwIfAborted()
      const r = this.claimAt(subject, first ? opts : again, Date.now(), true)
      if (r.claimed) return r.lease
      const left = deadline - performance.now()
      if (left <= 0)
        throw new TimeoutError(
          `${describe(subject)} is still held by ${r.holder.owner || `pid ${r.holder.pid}`} after ${opts.timeoutMs} ms`,
        )
      await this.waiters.waitFor(refs.get(r.holder)!.entry, left, opts.signal)
    }
  }

  /** Turn an observed holder that is this process's own claim into a lease (re-entrant owners). */
  guardHolder(holder: Holder): Lease | undefined {
    const ref = refs.get(holder)
    if (!ref || ref.contest !== this || ref.member !== this.member) return undefined
    if (!this.checkClaim(ref, -Infinity)) return undefined
    const claim = { entry: ref.entry, version: ref.version, member: ref.member }
    const lease = new Lease(
      LEASE_KEY,
      this,
      claim,
      holder.subject,
      holder.owner,
      holder.token,
      holder.claimedAt,
      holder.expiresAt,
      "free",
      true,
    )
    return lease
  }

  /** Release the claim `holder` describes, whoever made it, if it is still the current one. */
  releaseHolder(holder: Holder): boolean {
    const ref = refs.get(holder)
    if (!ref || ref.contest !== this) return false
    const r = native.sbl_release_holder(this.handle(), ref.entry, ref.version)
    if (r === 1) for (const l of [...this.watched]) l.poll()
    return r === 1
  }

  /** Every active claim (not expired at nowMs, holder alive). */
  holders(nowMs = Date.now()): Holder[] {
    checkNumber(nowMs, { ...NOW_MS, where: "holders" })
    const out: Holder[] = []
    for (let i = 0; ; i++) {
      const r = native.sbl_next_holder(this.handle(), i, nowMs, this.out)
      if (r === Errno.ENOENT) return out
      this.check(r)
      out.push(this.readHolder())
      i = r
    }
  }

  stats(): ContestStats {
    native.sbl_stats(this.handle(), this.stat)
    const s = this.stat
    return {
      claims: s[LeaseStat.claims]!,
      yields: s[LeaseStat.yields]!,
      expiries: s[LeaseStat.expiries]!,
      takeovers: s[LeaseStat.takeovers]!,
      releases: s[LeaseStat.releases]!,
      members: s[LeaseStat.members]!,
      subjects: s[LeaseStat.subjects]!,
      capacity: s[LeaseStat.capacity]!,
    }
  }

  /** What GET /metrics (serveStatus) shows of this contest: slotbus_contest_* labelled contest="<name>" (docs/api.md). */
  [METRICS](): MetricFamily[] {
    return contestFamilies(this.name, this.stats())
  }

  /** What `serveStatus` shows of this contest: its counts and the claims held now on this host. */
  [STATUS](): StatusSection {
    return contestSection(this.name, this.stats(), (now) => this.holders(now))
  }

  /** Clear the claim on one subject, or on every subject: for owner-controlled boot-time cleanup. Returns claims cleared. */
  reset(subject?: Subject): number {
    let n: number
    if (subject) {
      const label = this.encode(subject.label, "label", LEASE_LABEL_MAX)
      n = this.check(native.sbl_reset(this.handle(), checkKind(subject), label, label.length))
    } else {
      n = this.check(native.sbl_reset_all(this.handle()))
    }
    for (const l of [...this.watched]) l.poll()
    return n
  }

  /** Leave the contest: this process's leases are released, waits rejected; the last member out removes it. */
  close(): void {
    if (this.isClosed) return
    // Leaving makes every claim of this member stale at once (and wakes their waiters); leases notice
    // lazily (held, renew), and those whose signal someone holds are told now.
    this.isClosed = true
    this.unmark()
    for (const l of [...this.watched]) l.markLost("was lost: its contest was closed")
    clearInterval(this.watcher)
    this.waiters.wakeAll()
    this.freeIfIdle()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  get closed(): boolean {
    return this.isClosed
  }

  // The native contest is freed once no waiter thread can touch it any more; at exit at once (sbl_close stops the
  // thread, and the event loop reads its doorbell no more).
  private freeIfIdle() {
    if (this.isClosed && this.waiters.idle) this.free()
  }

  private free() {
    if (!this.ptr) return
    this.forgetAtExit()
    native.sbl_close(this.ptr)
    this.ptr = null
  }

  /** The mapped table, for tools and tests: writing it is how a hostile member would break others. */
  table(): { address: number; size: number } {
    const p = this.handle()
    return { address: Number(native.sbl_table(p)), size: native.sbl_table_size(p) }
  }

  // ---- internals used by Lease ----

  /** @internal */
  checkClaim(ref: ClaimRef, nowMs: number): boolean {
    if (!this.ptr || this.isClosed) return false
    return this.check(native.sbl_check(this.ptr, ref.entry, ref.version, nowMs)) === 1
  }

  /** @internal */
  renewClaim(ref: ClaimRef, nowMs: number, ttlMs: number): { version: number; expiresAt: number } | null {
    if (!(ttlMs > 0)) throw new RangeError(`renew needs a positive ttlMs, got ${ttlMs}`)
    const r = this.check(native.sbl_renew(this.handle(), ref.entry, ref.version, nowMs, ttlMs, this.out))
    if (r !== 1) return null
    return { version: this.view.getUint32(H.version, true), expiresAt: this.view.getFloat64(H.expiresAt, true) }
  }

  /** @internal */
  releaseClaim(lease: Lease): boolean {
    const ref = lease.ref
    if (!this.ptr || this.isClosed) return false
    return native.sbl_release(this.ptr, ref.entry, ref.version) === 1
  }

  /** @internal */
  watch(lease: Lease) {
    this.watched.add(lease)
    if (!this.watcher) {
      this.watcher = setInterval(() => {
        for (const l of [...this.watched]) l.poll()
        if (this.watched.size === 0) {
          clearInterval(this.watcher)
          this.watcher = undefined
        }
      }, WATCH_MS)
      this.watcher.unref?.()
    }
  }

  /** @internal */
  unwatch(lease: Lease) {
    this.watched.delete(lease)
  }

  // ---- private ----

  private handle(): ContestPtr {
    if (!this.ptr || this.isClosed)
      throw new ContestClosedError(`contest "${this.name}" is closed in this process; open it again`)
    return this.ptr
  }

  private check(r: number): number {
    if (r >= 0) return r
    if (r === -1000)
      throw new ProtocolError(
        `contest "${this.name}": the shared table is corrupt (${this.ptr ? native.sbl_error(this.ptr) : "?"}); a member scribbled it. Close and reopen once the culprit is gone.`,
      )
    if (r === Errno.ENOSPC)
      throw new ContestFullError(
        `contest "${this.name}" has no room for another subject; recreate it with a larger capacity`,
      )
    throw new ProtocolError(`contest "${this.name}": unexpected error ${-r}`)
  }

  private encode(s: string, field: "label" | "owner", limit: number): Uint8Array {
    // the same subject claimed again and again is the common case: skip the map
    const slot = field === "label" ? 0 : 1
    if (s === this.lastText[slot]) return this.lastBytes[slot]!
    let b = this.bytes.get(s)
    if (!b) {
      if (typeof s !== "string") throw new InvalidSubjectError(`${field} must be a string, got ${typeof s}`)
      b = encoder.encode(wellFormed(s, field))
      if (this.bytes.size > 4096) this.bytes.clear()
      this.bytes.set(s, b)
    }
    if (b.length > limit)
      throw new ContestFrameTooLargeError(
        `${field} is ${b.length} bytes; the limit is ${limit} (${field === "label" ? "SBL_LABEL_MAX" : "SBL_OWNER_MAX"}). Use a shorter ${field}, e.g. a hash.`,
        field,
        limit,
        b.length,
      )
    this.lastText[slot] = s
    this.lastBytes[slot] = b
    return b
  }

  private claimAt(subject: Subject, opts: ClaimOptions, nowMs: number, wallClock: boolean): ClaimResult {
    const kind = checkKind(subject)
    const label = this.encode(subject.label, "label", LEASE_LABEL_MAX)
    const owner = opts.owner === undefined ? NO_BYTES : this.encode(opts.owner, "owner", LEASE_OWNER_MAX)
    const ttl =
      opts.ttlMs === undefined
        ? 0
        : checkNumber(opts.ttlMs, {
            what: "ttlMs",
            min: Number.MIN_VALUE, // 0 would be a lease with no TTL: leave ttlMs out for that
            max: MAX_TTL_MS,
            integer: false,
            infinite: true,
          })
    const spinUs =
      opts.spinUs === undefined ? 0 : checkNumber(opts.spinUs, { what: "spinUs", max: MAX_SPIN_US, integer: false })
    const spin = wallClock ? spinUs : 0
    const trace = claimTrace(opts, "tryClaim") // null: no context
    const p = this.handle()
    const r =
      spin > 0
        ? native.sbl_try_claim_spin(p, kind, label, label.length, owner, owner.length, ttl, spin * 1e3, trace, this.out)
        : native.sbl_try_claim(p, kind, label, label.length, owner, owner.length, nowMs, ttl, trace, this.out)
    this.check(r)
    const v = this.view
    if (r === 1) {
      const ref = { entry: v.getUint32(H.entry, true), version: v.getUint32(H.version, true), member: this.member }
      const token = v.getBigUint64(H.token, true)
      const lease = new Lease(
        LEASE_KEY,
        this,
        ref,
        { kind, label: subject.label },
        opts.owner ?? "",
        token,
        v.getFloat64(H.claimedAt, true),
        v.getFloat64(H.expiresAt, true),
        HOW[v.getUint32(H.how, true)] ?? "free",
        wallClock,
      )
      if (trace !== null || this.out[H.trace + 25] === 1) traceClaim(lease, trace, this.out.subarray(H.trace))
      return { claimed: true, lease }
    }
    return { claimed: false, holder: this.readHolder() }
  }

  private readHolder(): Holder {
    const v = this.view
    const token = v.getBigUint64(H.token, true)
    const ownerLen = v.getUint32(H.ownerLen, true)
    const labelLen = v.getUint32(H.labelLen, true)
    const holder: Holder = {
      claimId: token,
      token,
      subject: {
        kind: v.getUint32(H.kind, true),
        label: decoder.decode(this.out.subarray(H.label, H.label + labelLen)),
      },
      owner: decoder.decode(this.out.subarray(H.owner, H.owner + ownerLen)),
      claimedAt: v.getFloat64(H.claimedAt, true),
      expiresAt: v.getFloat64(H.expiresAt, true),
      pid: v.getUint32(H.pid, true),
      ...(this.out[H.trace + 25] === 1 && { traceparent: storedTraceparent(this.out.subarray(H.trace)) }),
    }
    refs.set(holder, {
      entry: v.getUint32(H.entry, true),
      version: v.getUint32(H.version, true),
      member: v.getUint32(H.member, true),
      contest: this,
    })
    return holder
  }

  /** @internal for tests: claims waiting in this process, and whether its waiter thread runs */
  waiterState(): { waiting: number; thread: boolean } {
    return this.waiters.state()
  }
}

const FACTORY = Symbol("Contest.open")
