// A cluster contest: the same claims, leases and fencing tokens as a local contest, among processes on any host
// that reaches one cluster, on the lease table of the transport given as `remote` (table.ts, the port; nats(url)
// implements it on a JetStream KV bucket, docs/PROTOCOL.md §12). This file turns what the table returns into
// leases, holders and errors, and keeps each lease's deadline on this process's monotonic clock.
import { ProtocolError } from "../core/index.ts"
import {
  checkCreate,
  checkName,
  checkNumber,
  checkOptions,
  checkRemote,
  madeBy,
  MAX_TIMER_MS,
  ago,
  optionNames,
  section,
  STATUS,
  type CreateMode,
  type StatusSection,
} from "../kit/index.ts"
import { AlreadyExistsError, MissingPackageError, NotFoundError } from "../errors.ts"
import { LEASE_PORT, type KvClaim, type KvHolder, type LeaseRemote, type LeaseTable } from "./table.ts"
import { loadNative } from "../native/ffi.ts"
import { ContestClosedError, ContestUnavailableError } from "./errors.ts"
import { Holding } from "./held.ts"
import { holdClusterMarker, localInUse, modeError } from "./mode.ts"
import { checkKind, CONTEST_NAME, encodeField, type Subject } from "./subject.ts"
import { ClaimWait, letGo } from "./cluster-wait.ts"
import { claimContext, recordClaim } from "./trace.ts"

export interface ClusterContestOptions {
  /** The transport, passed in: `remote: nats(url)` from "slotbus/nats" (its server's needs: README, "Across hosts"). */
  remote: LeaseRemote
  /** The bucket: "if-missing" (default) binds or creates it; "never" binds only (NotFoundError); "must" creates only (AlreadyExistsError). */
  create?: CreateMode
  /** Added to every claim's TTL by contenders, taken off by holders, with 1 % of the TTL (§12.4). Default 100 ms. */
  marginMs?: number
  /** Replicas of a bucket this call creates (1 … 5). Default 1. */
  replicas?: number
}

export interface ClusterClaimOptions {
  /** A label for people (who holds it). At most 64 UTF-8 bytes. */
  owner?: string
  /** Required: across hosts a dead holder is noticed only by its lease running out. More than 2 × the margin. */
  ttlMs: number
  /** The claimer's W3C trace context, stored with the claim (PROTOCOL.md §12.1). Default: the active span's (an SDK). */
  traceparent?: string
  /** Its W3C tracestate, with `traceparent` only. Default: the active span's. */
  tracestate?: string
}

export interface ClusterWaitOptions extends ClusterClaimOptions {
  /** Stop waiting when this aborts (the promise rejects with its reason). */
  signal?: AbortSignal
  /** Stop waiting after this many ms, a request on the wire too (rejects with TimeoutError). Default: wait forever. */
  timeoutMs?: number
}

/** A claim someone holds in a cluster contest, as this process observed it. */
export interface ClusterHolder {
  /** The claim's identity; equal to its fencing token. */
  readonly claimId: bigint
  /** Fencing token: strictly increasing per subject across hosts (§12.2). */
  readonly token: bigint
  readonly subject: Subject
  readonly owner: string
  readonly host: string
  readonly pid: number
  readonly ttlMs: number
  /** ms (Date.now()): when this process may take the claim over unless it is renewed or released first. */
  readonly expiresAt: number
  /** The W3C trace context its claimer stored with the claim, if any. */
  readonly traceparent?: string
  readonly tracestate?: string
}

export type ClusterClaimResult =
  | { readonly claimed: true; readonly lease: ClusterLease }
  | { readonly claimed: false; readonly holder: ClusterHolder }

const LEASE_KEY = Symbol("clusterContest.tryClaim")
const FACTORY = Symbol("Contest.open remote")

/** A held claim in a cluster contest. `signal` aborts at its deadline: its last write + TTL − margin. */
export class ClusterLease implements AsyncDisposable {
  /** The claim's identity; equal to its fencing token. */
  readonly claimId: bigint
  private readonly holding: Holding
  private deadline: number

  /** @internal */
  constructor(
    key: symbol,
    private readonly contest: ClusterContest,
    private readonly c: KvClaim,
    readonly subject: Subject,
    readonly owner: string,
    /** How it was won: the subject was free (or new), or the last claim had expired. */
    readonly from: "free" | "expired",
  ) {
    this.claimId = c.token
    this.holding = new Holding(subject, c.token, {
      held: () => this.held,
      watch: () => this.watch(),
      unwatch: () => contest.forget(this),
    })
    madeBy(key, LEASE_KEY, "ClusterLease", "clusterContest.tryClaim(subject, options) or clusterContest.claim(…)")
    this.deadline = c.sentAt + c.ttlMs - contest.margin(c.ttlMs)
  }

  /** Fencing token: pass it to the storage you write to, which refuses tokens lower than one it saw. */
  get token(): bigint {
    return this.c.token
  }

  /** The W3C trace context stored with this claim (the claimer's: the option or the active span's), if any. */
  get traceparent(): string | undefined {
    return this.c.trace?.traceparent
  }

  /** The context stored with the claim this one replaced (the holder change: expired or released), if it had one. */
  get replacedTraceparent(): string | undefined {
    return this.c.replaced?.traceparent
  }

  /** The TTL of the last claim or renewal. */
  get ttlMs(): number {
    return this.c.ttlMs
  }

  /** ms (Date.now()): the deadline, when `signal` aborts unless renewed before. */
  get expiresAt(): number {
    return Date.now() + (this.deadline - performance.now())
  }

  /** Still ours: not released, and before the deadline on this process's monotonic clock. */
  get held(): boolean {
    if (this.holding.lost) return false
    if (performance.now() < this.deadline) return true
    this.holding.markLost("passed its deadline (last write + TTL − margin) before it was renewed")
    return false
  }

  /**
   * Extend the lease: a write on its revision with the new TTL (§12.3); the deadline moves to when that write was
   * sent + ttlMs − margin. Throws LeaseLostError if it was lost (deadline passed, or someone else wrote since).
   */
  async renew(ttlMs: number): Promise<void> {
    if (typeof ttlMs === "object" && ttlMs !== null)
      throw new TypeError("lease.renew takes the TTL as a number of ms, renew(30_000), not an options object")
    this.contest.checkTtl(ttlMs)
    if (!this.held) throw this.holding.lostError()
    const out = await this.contest.renewClaim(this.c, this.owner, ttlMs)
    if (out === null) {
      this.holding.markLost("was taken over (someone else wrote its key) before it was renewed")
      throw this.holding.lostError()
    }
    this.c.revision = out.revision
    this.c.ttlMs = ttlMs
    if (!this.held) {
      // acknowledged after the deadline: contenders may already judge it expired (§12.4); let it go
      void this.contest.releaseClaim(this.c).catch(() => {})
      throw this.holding.lostError()
    }
    this.deadline = out.sentAt + ttlMs - this.contest.margin(ttlMs)
    if (this.holding.watched) this.watch()
  }

  /** Let the subject go: true if it was still ours, false if it had been lost already. Idempotent. */
  async release(): Promise<boolean> {
    if (this.holding.lost) return false
    this.holding.markLost("was released")
    return this.contest.releaseClaim(this.c)
  }

  /** Throws LeaseLostError, saying why, unless still ours now (`held`): call it right before a side effect. */
  check(): void {
    this.holding.check()
  }

  /** Aborts when the lease is lost: released, past its deadline, or taken over. */
  get signal(): AbortSignal {
    return this.holding.signal
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release()
  }

  /** `signal` was asked for: the lease is looked at again at its deadline. */
  private watch() {
    this.holding.recheckIn(Math.min(this.deadline - performance.now() + 1, MAX_TIMER_MS))
  }
}

/**
 * A contest among processes on any host one transport reaches (docs/PROTOCOL.md §12): `Contest.open(name, { remote: nats(url) })`.
 * The calls of a local contest, async; every claim has a TTL; a dead holder is taken over at its TTL.
 */
export class ClusterContest implements AsyncDisposable {
  private isClosed = false
  private closing: Promise<void> | undefined
  private readonly leases = new Set<ClusterLease>()
  /** Claims on the wire: close() lets them land (and let go) before it closes the table, so none is left behind. */
  private readonly claiming = new Set<Promise<unknown>>()

  /** @internal */
  constructor(
    key: symbol,
    readonly name: string,
    private readonly table: LeaseTable,
    private readonly remote: LeaseRemote,
    private readonly unmark: () => void,
  ) {
    madeBy(key, FACTORY, "ClusterContest", "await Contest.open(name, { remote })")
  }

  /** The JetStream KV bucket the contest lives in. */
  get bucket(): string {
    return this.table.bucket
  }

  /** Claim `subject` now if it is free or its claim expired (on this process's clock); otherwise its holder. */
  async tryClaim(subject: Subject, opts: ClusterClaimOptions): Promise<ClusterClaimResult> {
    opts = checkOptions(opts, CLAIM_OPTIONS, "tryClaim", { required: ["ttlMs"] })
    return this.track(this.claimOnce(subject, opts))
  }

  /** Wait until `subject` can be claimed, then claim it: woken by the bucket's watch (a release) or the holder's expiry. */
  async claim(subject: Subject, opts: ClusterWaitOptions): Promise<ClusterLease> {
    opts = checkOptions(opts, WAIT_OPTIONS, "claim", { required: ["ttlMs"] })
    const wait = new ClaimWait(subject, opts, this.bucket) // over each request: a server that does not answer too
    for (let first = true; ; first = false) {
      opts.signal?.throwIfAborted()
      // timeoutMs 0 is one try, as in a local contest: that try is not raced against a deadline it cannot meet
      const tried = this.track(this.claimOnce(subject, opts))
      const r = await wait.within(tried, letGo, !(first && opts.timeoutMs === 0))
      if (r.claimed) return r.lease
      const h = holderRefs.get((wait.holder = r.holder))!
      if (performance.now() >= wait.deadline) throw wait.timedOut()
      // its watch is JetStream's too: an outage while it is made is ContestUnavailableError, as for the claim
      const until = Math.min(h.expiresAtMono, wait.deadline)
      await wait.within(this.guard(() => this.table.changed(h.key, h.revision, until, opts.signal)))
      if (this.isClosed) throw new ContestClosedError(`contest "${this.name}" was closed while waiting`)
    }
  }

  /** Every claim held now, read from the bucket; `expiresAt` is when this process may take each over. */
  async holders(): Promise<ClusterHolder[]> {
    const hs = await this.guard(() => this.handle().holders())
    return hs.map((h) => this.toHolder(h))
  }

  /** What `serveStatus` shows of this contest: the claims held across the cluster, read from its bucket now. */
  async [STATUS](): Promise<StatusSection> {
    const s = section("contest", this.name)
    s.facts.push(["leases held by this process", this.leases.size])
    const now = Date.now()
    const held = await this.holders().catch((e: unknown) => (e as Error).message ?? String(e))
    s.remote = { transport: String(this.remote.transport ?? "remote"), facts: [["bucket", this.bucket]], tables: [] }
    if (typeof held === "string") s.warnings.push(`the lease bucket cannot be read: ${held}`)
    else
      s.remote.tables.push({
        title: "claims held in the cluster",
        columns: ["kind", "label", "owner", "host", "pid", "token", "expires in"],
        rows: held.map((h) => [
          h.subject.kind,
          h.subject.label,
          h.owner,
          h.host,
          h.pid,
          String(h.token),
          ago(h.expiresAt - now),
        ]),
      })
    return s
  }

  /**
   * Leave: claims on the wire landed and let go, leases released (best effort), waits rejected; the bucket stays.
   * One promise for every call.
   */
  close(): Promise<void> {
    return (this.closing ??= this.leave())
  }
  private async leave() {
    this.isClosed = true
    await Promise.allSettled(this.claiming)
    await Promise.all([...this.leases].map((l) => l.release().catch(() => false)))
    await this.table.close()
    this.unmark()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** @internal the margin of §12.4 for a TTL */
  margin(ttlMs: number): number {
    return this.table.marginMs + Math.ceil(ttlMs / 100)
  }

  /** @internal */
  checkTtl(ttlMs: number): number {
    checkNumber(ttlMs, { what: "ttlMs", min: 1, max: MAX_TIMER_MS })
    if (ttlMs <= 2 * this.margin(ttlMs))
      throw new RangeError(
        `ttlMs ${ttlMs} leaves the holder nothing: it must exceed 2 × the margin (${this.margin(ttlMs)} ms: marginMs ${this.table.marginMs} + 1 % of the TTL)`,
      )
    return ttlMs
  }

  /** @internal */
  renewClaim(c: KvClaim, owner: string, ttlMs: number) {
    return this.guard(() => this.handle().renew(c, owner, ttlMs))
  }

  /** @internal */
  async releaseClaim(c: KvClaim): Promise<boolean> {
    return this.guard(() => this.table.release(c))
  }

  /** @internal */
  forget(l: ClusterLease) {
    this.leases.delete(l)
  }

  private handle(): LeaseTable {
    if (this.isClosed) throw new ContestClosedError(`contest "${this.name}" is closed in this process; open it again`)
    return this.table
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.claiming.add(p)
    return p.finally(() => this.claiming.delete(p))
  }

  private async claimOnce(subject: Subject, opts: ClusterClaimOptions): Promise<ClusterClaimResult> {
    const kind = checkKind(subject)
    const label = encodeField(subject.label, "label", 96)
    const owner = opts.owner ?? ""
    encodeField(owner, "owner", 64)
    const ttlMs = this.checkTtl(opts.ttlMs)
    const trace = claimContext(opts, "tryClaim") // undefined: no context
    const r = await this.guard(() => this.handle().tryClaim(kind, label, owner, ttlMs, trace))
    if (r.claimed) {
      const c = r.claim
      const lease = new ClusterLease(LEASE_KEY, this, c, { kind, label: subject.label }, owner, c.from)
      if (c.trace !== undefined || c.replaced !== undefined) recordClaim(subject.label, c.token, c.from, c.replaced)
      if (this.isClosed) {
        await lease.release().catch(() => {})
        throw new ContestClosedError(`contest "${this.name}" was closed while claiming`)
      }
      this.leases.add(lease)
      return { claimed: true, lease }
    }
    return { claimed: false, holder: this.toHolder(r.holder) }
  }

  private toHolder(h: KvHolder): ClusterHolder {
    const holder: ClusterHolder = {
      claimId: h.token,
      token: h.token,
      subject: { kind: h.kind, label: h.label },
      owner: h.owner,
      host: h.host,
      pid: h.pid,
      ttlMs: h.ttlMs,
      expiresAt: Date.now() + Math.max(0, h.expiresAtMono - performance.now()),
      ...(h.traceparent !== undefined && { traceparent: h.traceparent }),
      ...(h.tracestate !== undefined && { tracestate: h.tracestate }),
    }
    holderRefs.set(holder, h)
    return holder
  }

  // Errors of the transport (no server, no JetStream quorum, timeouts) become ContestUnavailableError.
  private async guard<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f()
    } catch (e) {
      if (e instanceof ProtocolError || e instanceof ContestClosedError) throw e
      if (this.isClosed) throw new ContestClosedError(`contest "${this.name}" was closed meanwhile`, { cause: e })
      throw new ContestUnavailableError(
        `contest "${this.name}": the JetStream bucket ${this.table.bucket} is unavailable (${this.remote.explain(e, "is JetStream on, and does it have a quorum?")})`,
        { cause: e },
      )
    }
  }
}

const holderRefs = new WeakMap<ClusterHolder, KvHolder>()

const CLAIM_FIELDS = { owner: true, ttlMs: true, traceparent: true, tracestate: true } as const
const CLAIM_OPTIONS = optionNames<ClusterClaimOptions>(CLAIM_FIELDS)
const WAIT_OPTIONS = optionNames<ClusterWaitOptions>({ ...CLAIM_FIELDS, signal: true, timeoutMs: true })
const CLUSTER_OPTIONS = optionNames<ClusterContestOptions>({
  remote: true,
  create: true,
  marginMs: true,
  replicas: true,
})

/** Contest.open(name, { remote }): the mode check of §12.5, then the table. */
export async function openCluster(name: string, opts: ClusterContestOptions): Promise<ClusterContest> {
  opts = checkOptions(opts, CLUSTER_OPTIONS, "Contest.open", { required: ["remote"] })
  const remote = checkRemote<LeaseRemote>(opts.remote, LEASE_PORT, "Contest.open")
  const create = checkCreate(opts.create, "Contest.open")
  const where = "Contest.open"
  const marginMs = checkNumber(opts.marginMs, { what: "marginMs", where, max: 3_600_000, integer: false, dflt: 100 })
  const replicas = checkNumber(opts.replicas, { what: "replicas", where, min: 1, max: 5, dflt: 1 })
  checkName(name, CONTEST_NAME)
  await loadNative() // the marker asks the library which backend runs
  const unmark = holdClusterMarker(name)
  try {
    if (localInUse(name)) throw modeError(name, "local")
    const explain = (e: unknown, otherwise: string) => remote.explain(e, otherwise)
    const table = await remote.openLeaseTable(name, { create, marginMs, replicas }).catch((e: unknown) => {
      if (
        e instanceof NotFoundError ||
        e instanceof AlreadyExistsError ||
        e instanceof ProtocolError ||
        e instanceof MissingPackageError
      )
        throw e
      throw new ContestUnavailableError(
        `contest "${name}": could not open its JetStream bucket (${explain(e, "is the server running with JetStream (-js)?")})`,
        {
          cause: e,
        },
      )
    })
    return new ClusterContest(FACTORY, name, table, remote, unmark)
  } catch (e) {
    unmark()
    throw e
  }
}
