// Leases across hosts on a JetStream KV bucket (docs/PROTOCOL.md §12): the writes on revisions, and when a contender
// may judge a claim expired (the keys, values and tokens are kv-lease-value.ts's). It implements the leases room's
// port (src/leases/table.ts), which turns what this returns into leases, holders and errors.
import type { KV, KvEntry } from "@nats-io/kv"
import { AlreadyExistsError, NotFoundError, ProtocolError } from "../core/index.ts"
import type { TraceContext } from "../kit/index.ts"
import type {
  HeldValue,
  KvClaim,
  KvClaimOutcome,
  KvHolder,
  LeaseTable,
  LeaseTableOptions as KvLeaseOptions,
} from "../leases/internal.ts"
import { mayHaveLostCreateRace, streamNotFound } from "./explain.ts"
import { kvClient } from "./packages.ts"
import type { NatsUse, SharedConnection } from "./shared.ts"
import { HOST, newId } from "./wire.ts"
import {
  bucketOf,
  contextOf,
  decodeValue,
  encodeValue,
  keyOf,
  type LeaseValue,
  marginFor,
  MAX_TOKEN,
  nextToken,
  subjectOf,
} from "./kv-lease-value.ts"

/** What a contender knows of one key: its last revision, when it first learnt of it (monotonic ms), its value. */
interface Observed {
  revision: number
  seenAt: number
  value: LeaseValue | null // null: absent, deleted or purged
}

const WATCH_LINGER_MS = 2000
/** Free keys nobody here waits on, kept so that claiming one again is one write (no read): the last this many. */
const FREE_KEPT = 256

const isWrongSequence = (e: unknown) =>
  (e as { code?: unknown })?.code === 10071 || /wrong last sequence/.test(String((e as Error)?.message))

/** One contest object's view of its bucket: the writes of §12.3 and the watches that wake waiting claims. */
export class KvLeaseTable implements LeaseTable {
  /**
   * The keys held (their seenAt judges expiry, §12.4), waited on or watched, and the last FREE_KEPT free ones, least
   * recently noted first; a key absent, deleted or purged is forgotten once nobody here waits on it or watches it.
   */
  private readonly seen = new Map<string, Observed>()
  /** seen's size past which its free keys beyond FREE_KEPT are dropped (twice what was kept, so amortised O(1)). */
  private trimAt = 4 * FREE_KEPT
  private readonly waiters = new Map<string, Set<() => void>>()
  /** A watch per key someone here waits on, kept a while after the last waiter left (a contended key is waited on again soon). */
  private readonly watches = new Map<string, { stop(): void; idle?: ReturnType<typeof setTimeout> }>()
  private readonly id = newId().slice(0, 16)
  private claims = 0
  private closed = false

  private constructor(
    readonly bucket: string,
    private readonly kv: KV,
    private readonly use: NatsUse,
    /** The bucket's creation, ms on the server's clock (§12.2). */
    readonly epochMs: number,
    readonly marginMs: number,
  ) {}

  /** Binds to (or creates) the contest's bucket. */
  static async open(contest: string, shared: SharedConnection, opts: KvLeaseOptions): Promise<KvLeaseTable> {
    const { Kvm } = await kvClient() // a missing package is said before any connection is tried
    const use = await shared.use()
    try {
      const kvm = new Kvm(use.nc)
      const bucket = bucketOf(contest)
      let kv: KV | null = null
      for (let attempt = 0; !kv; attempt++) {
        try {
          kv = await kvm.open(bucket, { bindOnly: true })
          await kv.status()
        } catch (e) {
          if (!streamNotFound(e)) throw e
          kv = null
        }
        // found later than at first: our own create, whose answer was lost
        if (kv && opts.create === "must" && attempt === 0)
          throw new AlreadyExistsError(`the lease bucket ${bucket} exists; open it with create "if-missing" or "never"`)
        if (!kv && opts.create === "never")
          throw new NotFoundError(`no lease bucket ${bucket} on this NATS cluster; open it with create "if-missing"`)
        if (kv) break
        try {
          kv = await kvm.create(bucket, {
            history: 1,
            replicas: opts.replicas,
            description: `slotbus contest ${contest}`,
          })
        } catch (e) {
          // another process created it meanwhile, or the answer was lost: look again (twice at most)
          if (opts.create === "must" && /already in use|exists/i.test(String(e)))
            throw new AlreadyExistsError(`the lease bucket ${bucket} was created meanwhile by another process`)
          if (attempt >= 2 || !mayHaveLostCreateRace(e)) throw e
        }
      }
      const created = (await kv.status()).streamInfo.created
      // the server writes ns: keep whole ms
      const epochMs = Date.parse(created.replace(/(\.\d{3})\d*/, "$1"))
      if (!Number.isFinite(epochMs))
        throw new ProtocolError(`lease bucket ${bucket}: unreadable creation time ${created}`)
      return new KvLeaseTable(bucket, kv, use, epochMs, opts.marginMs)
    } catch (e) {
      await use.release()
      throw e
    }
  }

  /**
   * §12.3: claims the subject if it is free, absent, or held by a claim expired on this process's clock, with the
   * claimer's context `trace` in the value (§12.1); the claim learns the context of the value it replaced.
   */
  async tryClaim(
    kind: number,
    label: Uint8Array,
    owner: string,
    ttlMs: number,
    trace?: TraceContext,
  ): Promise<KvClaimOutcome> {
    const key = keyOf(kind, label)
    let o = this.seen.get(key)
    let cached = o !== undefined
    for (let attempt = 0; ; attempt++) {
      if (attempt > 100) throw new ProtocolError(`lease key ${key}: lost 100 races in a row`)
      // the watch's view first (one round trip for a free subject); a read before yielding or after a lost race
      if (!o || attempt > 0) o = await this.read(key)
      let from: KvClaim["from"] = "free"
      const v = o.value
      if (v?.state === "held") {
        const expiresAtMono = o.seenAt + v.ttlMs + marginFor(v.ttlMs, this.marginMs)
        if (performance.now() < expiresAtMono) {
          if (cached) {
            cached = false // judged on the watch's view: read to be sure before yielding
            continue
          }
          const s = subjectOf(key)!
          return { claimed: false, holder: { ...v, key, ...s, revision: o.revision, expiresAtMono } }
        }
        from = "expired"
      }
      if (cached && v && v.token === MAX_TOKEN) {
        cached = false // refused on the watch's view only: read to be sure
        continue
      }
      const token = nextToken(v?.token, Date.now(), this.epochMs, key)
      const claim = `${this.id}.${++this.claims}`
      const value: HeldValue = {
        state: "held",
        token,
        claim,
        owner,
        ttlMs,
        host: HOST,
        pid: process.pid,
        ...trace,
      }
      const sentAt = performance.now()
      let revision: number
      try {
        revision = await this.write(key, value, o.value ? o.revision : 0)
      } catch (e) {
        if (isWrongSequence(e)) {
          cached = false
          continue
        }
        throw e
      }
      const replaced = v ? contextOf(v) : undefined
      return { claimed: true, claim: { key, token, claim, ttlMs, revision, sentAt, from, trace, replaced } }
    }
  }

  /** §12.3 renew: the same claim, token and context with a new TTL, on the holder's revision. null: someone wrote since. */
  async renew(c: KvClaim, owner: string, ttlMs: number): Promise<{ revision: number; sentAt: number } | null> {
    const value: HeldValue = {
      state: "held",
      token: c.token,
      claim: c.claim,
      owner,
      ttlMs,
      host: HOST,
      pid: process.pid,
      ...c.trace,
    }
    const sentAt = performance.now()
    try {
      return { revision: await this.write(c.key, value, c.revision), sentAt }
    } catch (e) {
      if (!isWrongSequence(e)) throw e
      const revision = await this.landedOwn(c)
      if (revision === null) return null
      c.revision = revision
      return this.renew(c, owner, ttlMs).then((r) => r && { revision: r.revision, sentAt }) // the deadline from the first try
    }
  }

  /**
   * The key's revision when its value is still this claim's (held, its token): a write of the holder's own that
   * timed out (a partition) and landed later (§12.3); null when someone else wrote since.
   */
  private async landedOwn(c: KvClaim): Promise<number | null> {
    const now = await this.read(c.key)
    return now.value?.state === "held" && now.value.token === c.token && now.revision !== c.revision
      ? now.revision
      : null
  }

  /** §12.3 release: `free` with the claim's token and context, on the holder's revision. false: someone wrote since. */
  async release(c: KvClaim): Promise<boolean> {
    try {
      await this.write(c.key, { state: "free", token: c.token, ...c.trace }, c.revision)
      return true
    } catch (e) {
      if (!isWrongSequence(e)) throw e
      const revision = await this.landedOwn(c)
      if (revision === null) return false
      c.revision = revision
      return this.release(c)
    }
  }

  /**
   * Resolves when the watch brings a revision of `key` other than `revision`, at `untilMono` (monotonic ms), or
   * when `signal` aborts: what a waiting claim sleeps on between attempts.
   */
  async changed(key: string, revision: number, untilMono: number, signal?: AbortSignal): Promise<void> {
    await this.watchKey(key)
    // (a signal aborted meanwhile fires no "abort" event for a listener added now)
    if ((this.seen.get(key)?.revision ?? 0) !== revision || this.closed || signal?.aborted) return
    return new Promise((resolve) => {
      let set = this.waiters.get(key)
      if (!set) this.waiters.set(key, (set = new Set()))
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener("abort", done)
        set!.delete(done)
        if (set!.size === 0 && this.waiters.get(key) === set) {
          this.waiters.delete(key)
          this.unwatchKey(key)
        }
        resolve()
      }
      set.add(done)
      const timer = setTimeout(done, Math.max(0, Math.min(untilMono - performance.now() + 1, 2 ** 31 - 1)))
      signal?.addEventListener("abort", done, { once: true })
    })
  }

  /** Every held claim in the bucket, read now. */
  async holders(): Promise<KvHolder[]> {
    const out: KvHolder[] = []
    const keys: string[] = []
    for await (const k of await this.kv.keys()) keys.push(k)
    for (const key of keys.sort()) {
      const s = subjectOf(key)
      if (!s) continue
      const o = await this.read(key)
      const v = o.value
      if (v?.state !== "held") continue
      out.push({
        ...v,
        key,
        ...s,
        revision: o.revision,
        expiresAtMono: o.seenAt + v.ttlMs + marginFor(v.ttlMs, this.marginMs),
      })
    }
    return out
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w()
    for (const w of this.watches.values()) clearTimeout(w.idle), w.stop()
    this.watches.clear()
    await this.use.release()
  }

  // The watch delivers the key's last value first, so nothing written between a read and the watch is missed.
  private async watchKey(key: string) {
    const had = this.watches.get(key)
    if (had) {
      clearTimeout(had.idle)
      had.idle = undefined
      return
    }
    if (this.closed) return
    const placeholder = { stop() {} }
    this.watches.set(key, placeholder)
    // a watch not made (its consumer create lost with the link) is tried again by the next wait
    const iter = await this.kv.watch({ key }).catch((e: unknown) => {
      if (this.watches.get(key) === placeholder) this.watches.delete(key)
      throw e
    })
    if (this.watches.get(key) !== placeholder || this.closed) return iter.stop()
    this.watches.set(key, iter)
    void (async () => {
      try {
        for await (const e of iter) this.observe(e)
      } catch {} // stopped, or the connection closed
    })()
  }

  private unwatchKey(key: string) {
    const w = this.watches.get(key)
    if (!w || w.idle) return
    w.idle = setTimeout(() => {
      if (this.watches.get(key) !== w) return
      this.watches.delete(key)
      w.stop()
      if (this.seen.get(key)?.value === null) this.seen.delete(key)
    }, WATCH_LINGER_MS)
    w.idle.unref?.()
  }

  private async write(key: string, value: LeaseValue, revision: number): Promise<number> {
    const bytes = encodeValue(value)
    const r = revision === 0 ? await this.kv.create(key, bytes) : await this.kv.update(key, bytes, revision)
    this.note(key, r, value)
    return r
  }

  private async read(key: string): Promise<Observed> {
    const e = await this.kv.get(key)
    if (!e) return this.note(key, 0, null)
    return this.note(key, e.revision, e.operation === "PUT" ? decodeValue(key, e.value) : null)
  }

  private observe(e: KvEntry) {
    let value: LeaseValue | null = null
    if (e.operation === "PUT")
      try {
        value = decodeValue(e.key, e.value)
      } catch {
        return // a claimant reading it reports it
      }
    this.note(e.key, e.revision, value)
  }

  // seenAt is when this process first learnt of the revision: a later read of the same one keeps it (§12.4)
  private note(key: string, revision: number, value: LeaseValue | null): Observed {
    const had = this.seen.get(key)
    if (had && had.revision >= revision && revision !== 0) return had
    const o = { revision, seenAt: performance.now(), value }
    this.seen.delete(key) // last noted last
    if (value !== null || this.waiters.has(key) || this.watches.has(key)) this.seen.set(key, o)
    if (had?.revision !== revision) for (const w of [...(this.waiters.get(key) ?? [])]) w()
    if (this.seen.size > this.trimAt) this.trim()
    return o
  }

  // A free key's entry only saves a read when it is claimed again; a held one's seenAt must stay (§12.4).
  private trim() {
    let free = 0
    for (const [key, o] of this.seen)
      if (o.value?.state === "free" && !this.waiters.has(key) && !this.watches.has(key)) free++
    for (const [key, o] of this.seen) {
      if (free <= FREE_KEPT) break
      if (o.value?.state !== "free" || this.waiters.has(key) || this.watches.has(key)) continue
      this.seen.delete(key)
      free--
    }
    this.trimAt = Math.max(4 * FREE_KEPT, 2 * this.seen.size)
  }
}

export async function openKvLeases(
  contest: string,
  shared: SharedConnection,
  opts: KvLeaseOptions,
): Promise<KvLeaseTable> {
  return KvLeaseTable.open(contest, shared, opts)
}
