// The port the leases room owns for contests across hosts (docs/PROTOCOL.md §12): what a transport implements and
// the caller passes in (`Contest.open(name, { remote: nats(url) })`, src/nats) - a table of claims with revisions,
// fencing tokens and watches. The room turns what it returns into leases, holders and errors; it imports no transport.
import type { CreateMode, TraceContext } from "../kit/index.ts"

/** A transport for contests across hosts, as a caller passes it in: `nats(url)` from "slotbus/nats" is one. */
export interface LeaseRemote {
  /** Its name in status views ("nats"). */
  readonly transport: string
  /**
   * Binds to (or, as `create` says, creates) the contest's table. NotFoundError, AlreadyExistsError,
   * ProtocolError and MissingPackageError pass through as they are; any other error means the table is unavailable.
   */
  openLeaseTable(contest: string, opts: LeaseTableOptions): Promise<LeaseTable>
  /** Words for one of its errors; `otherwise` is a hint for when it has nothing better to say. */
  explain(e: unknown, otherwise?: string): string
}

/** The methods a contest's `remote` option must have. */
export const LEASE_PORT = ["openLeaseTable", "explain"] as const satisfies readonly (keyof LeaseRemote)[]

/** One contest object's view of its table: the writes of §12.3 and the watches that wake waiting claims. */
export interface LeaseTable {
  /** Where the contest lives on the transport (a bucket's name, for status views). */
  readonly bucket: string
  /** What contenders add to a claim's TTL before judging it expired (§12.4). */
  readonly marginMs: number
  /**
   * §12.3: claims the subject if it is free, absent, or held by a claim expired on this process's clock; `trace`, the
   * claimer's context, is stored with the claim (§12.1) and the claim learns the one stored with the value it replaced.
   */
  tryClaim(kind: number, label: Uint8Array, owner: string, ttlMs: number, trace?: TraceContext): Promise<KvClaimOutcome>
  /** §12.3 renew: the same claim, token and context with a new TTL, on the holder's revision. null: someone wrote since. */
  renew(c: KvClaim, owner: string, ttlMs: number): Promise<{ revision: number; sentAt: number } | null>
  /** §12.3 release: `free` with the claim's token and context, on the holder's revision. false: someone wrote since. */
  release(c: KvClaim): Promise<boolean>
  /** Resolves when `key` has a revision other than `revision`, at `untilMono` (monotonic ms), or when `signal` aborts. */
  changed(key: string, revision: number, untilMono: number, signal?: AbortSignal): Promise<void>
  /** Every held claim in the table, read now. */
  holders(): Promise<KvHolder[]>
  close(): Promise<void>
}

export interface HeldValue {
  state: "held"
  token: bigint
  claim: string
  owner: string
  ttlMs: number
  host: string
  pid: number
  /** The claimer's W3C trace context (§12.1), if it had one. */
  traceparent?: string
  tracestate?: string
}
export interface KvClaim {
  key: string
  token: bigint
  claim: string
  ttlMs: number
  /** The revision the claim (or the last renewal) produced: the holder's guard. */
  revision: number
  /** Monotonic ms just before the write that produced `revision` was sent (§12.4). */
  sentAt: number
  from: "free" | "expired"
  /** The claimer's context, stored with the claim (and its renewals and release). */
  trace?: TraceContext
  /** The context stored with the value the claim replaced: the last claim's, held (expired) or released. */
  replaced?: TraceContext
}

export interface KvHolder extends HeldValue {
  key: string
  kind: number
  label: string
  revision: number
  /** Monotonic ms at which this process may take the claim over (§12.4). */
  expiresAtMono: number
}

export type KvClaimOutcome = { claimed: true; claim: KvClaim } | { claimed: false; holder: KvHolder }

export interface LeaseTableOptions {
  create: CreateMode
  marginMs: number
  replicas: number
}
