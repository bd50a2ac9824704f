// What the hub and the worker SDK say to each other. Hub → worker goes over slotbus: HTTP requests as
// `bus.request`, control messages as raw `bus.call` with a JSON body (a client can never send a raw call).
// Worker → hub goes over the hub's token-protected HTTP endpoints under INTERNAL_PREFIX, except `emit`, which
// a worker publishes straight into the hub's events topic (shared memory) once it knows the topic's name.
import type { NameRule } from "../kit/index.ts"
import type { Params } from "./routes.ts"

export const INTERNAL_PREFIX = "/_slotbus/"

/** A worker's name (a part of its bus name and of the hub's NATS service name) and a replica's instance. */
export const WORKER_NAME: NameRule = { what: "worker name", max: 40, chars: "A-Za-z0-9_-" }
export const INSTANCE_NAME: NameRule = { what: "instance" }

/**
 * Response header: the body continues beyond this slot; pull the rest with `{ op: "pull", stream }`. Only a
 * worker that was offered no stream window (docs/PROTOCOL.md §9.9) sends it; it goes with the next major version.
 */
export const STREAM_HEADER = "x-slotbus-stream"
/** Response header: a JSON array of Set-Cookie values (slot heads hold one value per header name). */
export const COOKIES_HEADER = "x-slotbus-set-cookie"

export type ControlMessage =
  | { op: "ping" }
  // pull and cancel: the chunked bodies of a worker offered no stream window (docs/PROTOCOL.md §9.9)
  | { op: "pull"; stream: number }
  | { op: "cancel"; stream: number }
  | { op: "sse-open"; conn: string; path: string; headers: [string, string][] }
  | { op: "sse-close"; conn: string; reason: string }

export interface PingReply {
  pid: number
  instance: string
  served: number
  active: number
}

export interface RouteDecl {
  method: string
  pattern: string
  sse?: boolean
}

export interface RegisterRequest {
  name: string
  instance: string
  pid: number
  routes: RouteDecl[]
  /** The bus this worker was on before it lost the hub, so the hub can say whether it was replaced. */
  previousBus?: string
}

export interface RegisterReply {
  bus: string
  /** Response bodies given as bytes travel whole up to this size; without a stream window, larger ones go in chunks of it. */
  chunkBytes: number
  /** The hub's events topic: `app.emit` publishes to it directly (hubs before it was added leave it out). */
  topic?: string
  /** The hub takes workers over NATS too (its `nats` option). */
  nats?: boolean
  /** Its events topic spans hosts (`eventsDurable`): a worker on another host opens it with its `nats` option. */
  eventsNats?: boolean
}

/** Where a worker sends an SSE event: one connection, every connection on a path, or on a pattern. */
export type PushTarget = { conn: string } | { path: string } | { pattern: string; params?: Params }

export interface SseEvent {
  /** The `event:` field; omitted means "message". */
  event?: string
  /** Already serialized: strings as they are, anything else as JSON. */
  data: string
  id?: string
}

export interface PushItem {
  target: PushTarget
  event?: SseEvent
  /** End the matched connections after the event. */
  close?: boolean
}

export interface EmitItem {
  type: string
  data: string
  routing?: Record<string, string>
}

export interface DeliveryReply {
  /** Per item: for push, how many SSE clients got it; for emit, the event's id in the hub's topic (0 if refused). */
  delivered: number[]
}
