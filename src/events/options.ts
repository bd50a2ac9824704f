// What Topic.open, subscribe, subscribeDurable, publish and bind take, and their checks: every option and argument is
// checked before anything native happens (src/events/README.md, "Mistakes cost nothing").
import { TopicConst } from "../native/topic-layout.ts"
import {
  checkCreate,
  checkName,
  checkNumber,
  checkOptions,
  checkRemote,
  optionNames,
  type CreateMode,
  type ValueProblem,
} from "../kit/index.ts"
import { TOPIC_PORT, type TopicRemote, type TopicStreamLimits } from "./bridge.ts"
import type { EventData, Routing } from "./codec.ts"
import type { SubscribeOptions } from "./subscription.ts"

export interface TopicOptions {
  /**
   * Ring bytes (a power of two, 64 KiB … 1 GiB). Default 1 MiB. Given, it is also checked: joining a topic that
   * has another capacity is a SettingsMismatchError (say nothing to join whatever it has).
   */
  capacity?: number
  /** "if-missing" (default): join the topic or create it; "never": join only (NotFoundError); "must": create only (AlreadyExistsError). */
  create?: CreateMode
  /**
   * How long to wait for a member of the topic to answer (their accept threads answer at once unless every member
   * is stopped, SIGSTOP). Default 5000; 0 still waits one millisecond.
   */
  timeoutMs?: number
  /** Called with a warning (a malformed late-binding value was skipped). Default: console.warn. */
  onWarning?: (message: string) => void
  /**
   * Spans hosts through a transport passed in: `remote: nats(url)` (`import { nats } from "slotbus/nats"`,
   * docs/PROTOCOL.md §11). One process per host bridges the ring to the others (elected, taken over when it dies);
   * replay (`from`) stays local to each host's ring unless the topic is `durable`.
   */
  remote?: TopicRemote
  /**
   * With `remote`: keep the topic's events in a JetStream stream (docs/PROTOCOL.md §11.6), so
   * `topic.subscribeDurable(filter, { from: id })` replays them on any host, ids being the stream's sequence
   * numbers. `true`, or the limits the stream is created with: `maxBytes` (default 256 MiB), `maxAgeMs` (default
   * 0: none), `replicas` (default 1). A stream that exists is used as it is.
   */
  durable?: boolean | { maxBytes?: number; maxAgeMs?: number; replicas?: number }
}

export interface DurableSubscribeOptions {
  /** How many events are read ahead of the reader at most. Default 256. */
  queue?: number
  /** Where to start: "now" (default), "oldest" (the oldest the stream holds), or after the event with this id (a stream sequence). */
  from?: "now" | "oldest" | number
}

export interface PublishInit {
  type: string
  routing?: Routing
  /** Bytes, a string, or anything JSON.stringify accepts. */
  data?: EventData
  /**
   * The publisher's W3C trace context, carried as routing keys (docs/PROTOCOL.md §8.3) for subscribers to link to.
   * Default: with an OpenTelemetry SDK registered, a PRODUCER span's, child of the active span.
   */
  traceparent?: string
  /** The `tracestate` that goes with `traceparent` (carried when it is at most 255 bytes). */
  tracestate?: string
}

/** "When an event of `type` carries keys[0], keys[1] and `fill`, remember (keys) → fill; fill it into later events lacking it." */
export interface BindingRule {
  type: string
  keys: [string, string]
  fill: string
}

const OPEN_OPTIONS = optionNames<TopicOptions>({
  capacity: true,
  create: true,
  timeoutMs: true,
  onWarning: true,
  remote: true,
  durable: true,
})
export const SUBSCRIBE_OPTIONS = optionNames<SubscribeOptions>({ queue: true, idle: true, from: true })
export const DURABLE_SUBSCRIBE_OPTIONS = optionNames<DurableSubscribeOptions>({ queue: true, from: true })
const STREAM_LIMITS = optionNames<Exclude<TopicOptions["durable"] & object, boolean>>({
  maxBytes: true,
  maxAgeMs: true,
  replicas: true,
})
export const PUBLISH_FIELDS = optionNames<PublishInit>({
  type: true,
  routing: true,
  data: true,
  traceparent: true,
  tracestate: true,
})
export const RULE_FIELDS = optionNames<BindingRule>({ type: true, keys: true, fill: true })

export function checkQueue(q: unknown, where = "subscribe"): number {
  return checkNumber(q, { what: "queue", where, min: 1, max: 1 << 20, dflt: 256 })
}

export function checkFrom(from: unknown = "now"): "now" | "oldest" | number {
  if (from === "now" || from === "oldest") return from
  if (Number.isSafeInteger(from) && (from as number) >= 0) return from as number
  if (typeof from === "number")
    throw new RangeError(`from must be "now", "oldest" or an event id (a whole number ≥ 0), got ${from}`)
  throw new TypeError(`from must be "now", "oldest" or an event id, got ${JSON.stringify(from) ?? typeof from}`)
}

/** The stream limits of the `durable` option (§11.6), or undefined when the topic is not durable. */
function streamLimits(durable: TopicOptions["durable"], remote: boolean): TopicStreamLimits | undefined {
  if (durable === undefined || durable === false) return undefined
  if (durable !== true && (typeof durable !== "object" || durable === null))
    throw new TypeError(`durable must be true or { maxBytes, maxAgeMs, replicas }, got ${typeof durable}`)
  if (!remote)
    throw new TypeError("durable needs remote: the stream is the transport's (Topic.open(name, { remote, durable }))")
  const o = durable === true ? {} : durable
  checkOptions(o, STREAM_LIMITS, "Topic.open durable", { noun: "durable field" })
  const int = (v: unknown, dflt: number, what: string, min: number) =>
    checkNumber(v, { what: `durable.${what}`, where: "Topic.open", min, dflt })
  return {
    maxBytes: int(o.maxBytes, 256 * 1024 * 1024, "maxBytes", 1),
    maxAgeMs: int(o.maxAgeMs, 0, "maxAgeMs", 0),
    replicas: int(o.replicas, 1, "replicas", 1),
  }
}

function topicName(name: string): Buffer {
  return Buffer.from(`${checkName(name, { what: "topic name", where: "Topic.open" })}\0`)
}

const CAPACITY = {
  what: "capacity",
  where: "Topic.open",
  min: TopicConst.MIN_CAPACITY,
  max: TopicConst.MAX_CAPACITY,
  powerOfTwo: true,
  dflt: 1 << 20,
  error: (p: ValueProblem) => new TypeError(p.message), // a TypeError since 0.1, even out of range
}

/** Topic.open's options, checked in the order a mistake is reported, with their defaults filled in. */
export function checkOpen(name: string, opts: TopicOptions) {
  const cname = topicName(name)
  checkOptions(opts, OPEN_OPTIONS, "Topic.open")
  const capacity = checkNumber(opts.capacity, CAPACITY)
  const create = checkCreate(opts.create, "Topic.open")
  const timeoutMs = checkNumber(opts.timeoutMs, {
    what: "timeoutMs",
    where: "Topic.open",
    max: Infinity,
    integer: false,
    dflt: 5000,
  })
  if (opts.onWarning !== undefined && typeof opts.onWarning !== "function")
    throw new TypeError(`onWarning must be a function, got ${typeof opts.onWarning}`)
  const remote = opts.remote === undefined ? undefined : checkRemote<TopicRemote>(opts.remote, TOPIC_PORT, "Topic.open")
  const limits = streamLimits(opts.durable, remote !== undefined)
  return { cname, capacity, create, timeoutMs, remote, limits }
}
