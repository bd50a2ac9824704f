// slotbus/nats: the NATS transport, passed in by the caller (docs/PROTOCOL.md §10-§12). `nats(url)` is one object
// that implements the port of each room it can span hosts for, as the room owns it:
//   the core's RemoteTransport (src/core/wire/remote.ts)    SlotBus.listen / SlotWorker.connect(…, { remote: nats(url) })
//   the events room's TopicRemote (src/events/bridge.ts)  Topic.open(name, { remote: nats(url), durable })
//   the leases room's LeaseRemote (src/leases/table.ts)   Contest.open(name, { remote: nats(url) })
// and what it opens shares one connection (shared.ts).
// Importing this file loads no NATS client: each package is imported when a feature that needs it opens
// (packages.ts), and a missing one is a MissingPackageError naming the install command to run.
import type {
  RemoteHubHost,
  RemoteLink,
  RemoteTransport,
  RemoteWorkerHost,
  TransportOptions,
} from "../core/internal.ts"
import type { TopicBridge, TopicBridgeHost, TopicRemote, TopicStreamLimits } from "../events/internal.ts"
import type { LeaseRemote, LeaseTable, LeaseTableOptions } from "../leases/internal.ts"
import { explainNats } from "./explain.ts"
import { serveHub } from "./hub.ts"
import { natsClient } from "./packages.ts"
import { openKvLeases } from "./kv-lease.ts"
import { SharedConnection } from "./shared.ts"
import { redactUrl } from "./wire.ts"
import { startTopicBridge } from "./topic-bridge.ts"
import { serveWorker } from "./worker.ts"
import { deepEquals } from "../runtime/index.ts"

/** What `nats()` takes: a server URL (several comma-separated), the NATS client's connection options, or a connection of yours. */
export type NatsConnectionLike = string | object

/**
 * The NATS transport for one server (or connection): pass it as `remote` to a bus, worker, topic or contest.
 * Everything opened with one value shares one connection.
 */
export class Nats implements RemoteTransport, TopicRemote, LeaseRemote {
  readonly transport = "nats"
  private readonly shared: SharedConnection

  /** @internal use nats(…) */
  constructor(readonly connection: NatsConnectionLike) {
    this.shared = new SharedConnection(connection)
  }

  /** @internal the core's port */
  serveHub(host: RemoteHubHost, opts: TransportOptions): Promise<RemoteLink> {
    return serveHub(host, this.shared, opts)
  }

  /** @internal the core's port */
  serveWorker(host: RemoteWorkerHost, opts: TransportOptions): Promise<RemoteLink> {
    return serveWorker(host, this.shared, opts)
  }

  /** @internal the events room's port */
  openTopicBridge(
    host: TopicBridgeHost,
    durable?: { limits: TopicStreamLimits; warn: (line: string) => void },
  ): Promise<TopicBridge> {
    return startTopicBridge(host, this.shared, durable)
  }

  /** @internal the leases room's port */
  openLeaseTable(contest: string, opts: LeaseTableOptions): Promise<LeaseTable> {
    return openKvLeases(contest, this.shared, opts)
  }

  /** @internal the leases room's port */
  explain(e: unknown, otherwise?: string): string {
    return explainNats(e, otherwise)
  }

  /**
   * @internal createHub's start: loads the NATS client package a connection from a URL or options opens with (a
   * connection of the caller's needs none), so a missing one is a MissingPackageError before the hub listens.
   */
  async loadClient(): Promise<void> {
    if (!isConnection(this.connection as object)) await natsClient()
  }

  /**
   * @internal the core's port: the same servers with the same credentials. URLs compare as written (spaces
   * aside), connection options field by field (functions, such as an authenticator, by identity), a connection
   * of yours by identity only.
   */
  sameAs(other: RemoteTransport): boolean {
    const theirs = (other as Partial<Nats>).connection
    if (other.transport !== this.transport || theirs === undefined) return false
    const mine = this.connection
    if (typeof mine === "string" || typeof theirs === "string")
      return typeof mine === typeof theirs && urls(mine as string) === urls(theirs as string)
    if (mine === theirs) return true
    return !isConnection(mine) && !isConnection(theirs) && deepEquals(mine, theirs, true)
  }

  toString(): string {
    return typeof this.connection === "string"
      ? `nats(${redactUrls(this.connection)})`
      : "nats(a connection or its options)"
  }
}

const redactUrls = (s: string) => s.split(",").map(redactUrl).join(",")
const urls = (s: string) =>
  s
    .split(",")
    .map((u) => u.trim())
    .join(",")
// A NATS connection of the caller's (not its options): it publishes.
const isConnection = (c: object) => typeof (c as { publish?: unknown }).publish === "function"

/**
 * The NATS transport: `SlotBus.listen(name, { remote: nats("nats://host:4222") })`, and the same for
 * `SlotWorker.connect`, `Topic.open` and `Contest.open`. Takes a URL (several comma-separated), the NATS client's
 * connection options, or a connection of yours (left open when slotbus closes). From a URL or options, one
 * connection per value: opened by the first bus, worker, topic or contest opened with it, shared by the rest, closed
 * with the last; pass the same value to share it, call nats() again for a connection of their own.
 */
export function nats(connection: NatsConnectionLike): Nats {
  if (typeof connection === "string") {
    if (connection.trim() === "") throw new TypeError("nats(url): the URL is empty")
  } else if (typeof connection !== "object" || connection === null || Array.isArray(connection))
    throw new TypeError(
      `nats() takes a URL string, NATS connection options or a NATS connection, got ${connection === null ? "null" : Array.isArray(connection) ? "an array" : typeof connection}`,
    )
  return new Nats(connection)
}
