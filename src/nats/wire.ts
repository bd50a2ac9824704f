// The NATS mapping of docs/PROTOCOL.md §10: subjects, headers, presence messages, and the connection.
import { hostname } from "node:os"
import type { Msg, NatsConnection } from "@nats-io/transport-node"
import { RemoteUnavailableError } from "../core/index.ts"
import { explainNats } from "./explain.ts"
import { natsClient } from "./packages.ts"

/**
 * The 16 bytes before a request's or an answer's head (§10.2), little-endian: version (1), kind or flags, 2 bytes
 * 0, then request: head length, timeout ms, stream window; answer: status, head length, 0 (a streamed answer's
 * frames: §10.4). Binary, not NATS headers: headers
 * cost both sides more than the rest of a small request together.
 */
export const PREFIX = 16
export const WIRE_VERSION = 1

// Byte by byte, not through a DataView: a DataView needs `.buffer`, which JSC makes for a small typed array on first
// use (~200 ns: a request's payload is fresh), and a DataView of its own per message.
export function writePrefix(buf: Uint8Array, kindOrFlags: number, a: number, b: number, c = 0) {
  buf[0] = WIRE_VERSION
  buf[1] = kindOrFlags
  buf[2] = 0
  buf[3] = 0
  putU32(buf, 4, a)
  putU32(buf, 8, b)
  putU32(buf, 12, c)
}

function putU32(buf: Uint8Array, at: number, v: number) {
  buf[at] = v
  buf[at + 1] = v >>> 8
  buf[at + 2] = v >>> 16
  buf[at + 3] = v >>> 24
}

const u32 = (d: Uint8Array, at: number) => (d[at]! | (d[at + 1]! << 8) | (d[at + 2]! << 16) | (d[at + 3]! << 24)) >>> 0

/** The prefix's fields, or null when the message is too short or of another version. */
export function readPrefix(data: Uint8Array): { kindOrFlags: number; a: number; b: number; c: number } | null {
  if (data.length < PREFIX || data[0] !== WIRE_VERSION || data[2] !== 0 || data[3] !== 0) return null
  return { kindOrFlags: data[1]!, a: u32(data, 4), b: u32(data, 8), c: u32(data, 12) }
}

/** A streamed answer's frames (§10.4): their flags byte. END may add FAILED (1) or CANCELLED. */
export const StreamFlag = { FAILED: 1, HEAD: 2, DATA: 4, END: 8, CANCELLED: 16 } as const

/** A bus name as one subject token: `.` written as `~` (§10.1). */
export const subjects = (bus: string) => {
  const root = `slotbus.${bus.replaceAll(".", "~")}`
  return {
    hub: `${root}.hub`,
    hb: `${root}.hb`,
    req: (worker: string) => `${root}.req.${worker}`,
    cancel: (worker: string) => `${root}.cancel.${worker}`,
    credit: (worker: string) => `${root}.credit.${worker}`,
    /** A hub's reply subjects (§10.2): `<key>` is never announced, so they cannot be guessed. */
    replies: (hub: string, key: string) => `${root}.re.${hub}.${key}`,
  }
}

/** The hub that sent a request, from its reply subject `slotbus.<bus>.re.<hub>.<key>.<n>` (§10.2). */
export const hubOfReply = (reply: string) => reply.split(".")[3]

/**
 * A subscription callback that never throws into nats.js: a throw there ends the reader loop of the whole
 * connection, for good. A message `take` cannot handle is counted by `refuse` instead.
 */
export function guarded(take: (msg: Msg) => void, refuse: (e: unknown) => void) {
  return (err: Error | null, msg: Msg) => {
    if (err) return
    try {
      take(msg)
    } catch (e) {
      refuse(e)
    }
  }
}

/** A heartbeat interval as announced (§10.1): clamped, so no presence can make a peer impatient or immortal. */
export const clampHeartbeat = (ms: number) => Math.min(Math.max(ms, 100), 60_000)

/**
 * A periodic liveness check's own lateness (§10.3). A process that did not run for a while (stopped, starved on a
 * loaded machine, a long GC) fires its timers before it reads what its socket took in meanwhile: that time is not
 * its peers' silence. Each call: how many ms this tick came after `everyMs` when that is more than `everyMs`, else 0.
 */
export function stallMeter(everyMs: number): () => number {
  let last = performance.now()
  return () => {
    const now = performance.now()
    const late = now - last - everyMs
    last = now
    return late > everyMs ? late : 0
  }
}

/** An id for a hub or a worker connection (§10.1): 1 to 64 of [A-Za-z0-9_-]. */
export const newId = () => crypto.randomUUID().replaceAll("-", "")
export const ID = /^[A-Za-z0-9_-]{1,64}$/
export const HOST = hostname()

export interface WorkerPresence {
  v: 1
  worker: string
  host: string
  pid: number
  slots: number
  state: "serving" | "draining" | "leaving"
  /** Changed each time the worker's connection came back (§10.3). */
  epoch: number
  /** How often it announces itself: a hub counts it gone no sooner than 4 × this (§10.3). */
  heartbeatMs: number
}
export interface HubPresence {
  v: 1
  hub: string
  heartbeatMs: number
}

const decoder = new TextDecoder()
/** A presence message, or null when it is not one (anything may publish on these subjects). */
export function readPresence(data: Uint8Array): Record<string, unknown> | null {
  if (data.length > 4096) return null
  try {
    const v = JSON.parse(decoder.decode(data)) as unknown
    return typeof v === "object" && v !== null && (v as { v?: unknown }).v === 1 ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** How often a connection slotbus opens pings its server (nats.js's pingInterval; 2 unanswered and it reconnects). */
export const PING_INTERVAL_MS = 5000

/** The connection the `nats` option names: a connection of the caller's (left open), or one made here. */
export async function openConnection(option: unknown): Promise<{ nc: NatsConnection; owned: boolean }> {
  if (typeof option === "object" && option !== null && typeof (option as NatsConnection).publish === "function")
    return { nc: option as NatsConnection, owned: false }
  const { connect } = await natsClient()
  // A copy: the client writes into the options it is given, and the caller's must stay as they were (sameAs).
  // Reconnecting for good unless told otherwise: the client's default gives up after 10 tries (~20 s), and a
  // connection slotbus owns is shared by users that cannot open it again (their subscriptions, timers, elections).
  // A ping every 5 s: with the client's default (2 min, 2 unanswered) a server that hangs (stopped, a frozen VM, a
  // dropped route) looked connected for minutes; now the client sees it in ~15 s and goes to another server.
  const given = typeof option === "string" ? { servers: option.split(",").map((s) => s.trim()) } : (option as object)
  const opts = { maxReconnectAttempts: -1, pingInterval: PING_INTERVAL_MS, ...given, ...urlCredentials(given) }
  try {
    return { nc: await connect(opts as never), owned: true }
  } catch (e) {
    const servers = (opts as { servers?: string | string[] } | undefined)?.servers ?? "127.0.0.1:4222"
    throw new RemoteUnavailableError(
      `cannot connect to the NATS server at ${[servers].flat().join(", ")}: ${explainNats(e, "is the address right, and does a nats-server run there?")}`,
      { cause: e },
    )
  }
}

// a server URL's user:pass@ or token@ (its userinfo)
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)?([^@/]*)@/i

/** `url` with its credentials shown as `***` (for messages, logs and status). */
export const redactUrl = (url: string): string => url.replace(USERINFO, (_, scheme = "") => `${scheme}***@`)

/**
 * The credentials written in the options' server URLs (`nats://user:pass@host`, `nats://token@host`), which the
 * NATS client does not read: as its `user` and `pass`, or `token`, with the URLs without them. Nothing when none
 * has any; a TypeError when they differ between URLs or the options give credentials of their own too.
 */
function urlCredentials(o: {
  servers?: unknown
  user?: unknown
  pass?: unknown
  token?: unknown
  authenticator?: unknown
}) {
  const list = typeof o.servers === "string" ? [o.servers] : Array.isArray(o.servers) ? o.servers : []
  const found = new Set<string>()
  const servers = list.map((u) => {
    if (typeof u !== "string") return u
    const m = USERINFO.exec(u)
    if (!m) return u
    found.add(m[2]!)
    return u.replace(USERINFO, m[1] ?? "")
  })
  if (found.size === 0) return {}
  if (found.size > 1) throw new TypeError("nats(): the server URLs carry different credentials; give them once")
  if (o.user !== undefined || o.pass !== undefined || o.token !== undefined || o.authenticator !== undefined)
    throw new TypeError("nats(): credentials both in a server URL and in the options; give them once")
  const info = [...found][0]!
  const colon = info.indexOf(":")
  const auth =
    colon < 0 ? { token: decoded(info) } : { user: decoded(info.slice(0, colon)), pass: decoded(info.slice(colon + 1)) }
  return { servers, ...auth }
}

function decoded(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw new TypeError(
      "nats(): a server URL's credentials are not percent-encoded right (a % not followed by two hex digits)",
    )
  }
}
