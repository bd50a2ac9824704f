// The HTTP hub: a front door on the runtime's HTTP server (Bun.serve, node:http) that routes requests to worker
// processes over slotbus.
// This file dispatches; each concern lives next to it (registry, liveness, proxy, sse, health).
import {
  madeBy,
  METRICS,
  printable,
  selfFamilies,
  sleep,
  STATUS,
  type MetricFamily,
  type StatusSection,
} from "../../kit/index.ts"
import { SettingsMismatchError, Topic } from "../../events/index.ts"
import { HubEventsError } from "../errors.ts"
import { MissingPackageError } from "../../core/index.ts"
import { sameToken, defaultTokenFile, newToken, removeTokenFile, writeTokenFile } from "../token.ts"
import { INTERNAL_PREFIX, type DeliveryReply, type EmitItem, type PushItem, type RegisterRequest } from "../wire.ts"
import { Health, hubFamilies, natsSections, type HubHealth } from "./health.ts"
import { Liveness } from "./liveness.ts"
import {
  eventsTopicFor,
  idleSecondsFor,
  json,
  MiB,
  resolveOptions,
  type HubOptions,
  type ResolvedOptions,
} from "./options.ts"
import { readBody, RequestProxy } from "./proxy.ts"
import { busPrefixFor, Registry } from "./registry.ts"
import { SseHub } from "./sse.ts"
import { StatusStream } from "./status.ts"
import { hubReport, hubSection } from "./section.ts"
import type { Nats } from "../../nats/index.ts"
import { metricsAnswer, renderMetrics, sharedScrape } from "../../status/internal.ts"
import { HubMetrics } from "./metrics.ts"
import { sweepDeadBuses } from "../../native/socket-dir.ts"
import { type HttpServer as Server, pathStart, refuseServed, serveHttp } from "../../runtime/index.ts"

const utf8 = new TextDecoder()

const FACTORY = Symbol("createHub")

/** Kinds of errors the catch-all remembers having logged; past this many it forgets them all (and logs anew). */
const MAX_FAULT_KINDS = 256

/** Starts a hub. Workers join it with `hubWorker(hub.url, name)`. */
export async function createHub(opts: HubOptions = {}): Promise<Hub> {
  const hub = new Hub(FACTORY, opts)
  await hub.start()
  return hub
}

export class Hub {
  readonly token: string
  private server: Server<undefined> | null = null
  private tokenPath = ""
  private closing: Promise<void> | null = null
  private refusing = false
  private readonly opts: ResolvedOptions
  private readonly healthReport: Health
  private readonly registry: Registry
  private readonly metrics = new HubMetrics((name) => this.registry.isLive(name))
  private readonly liveness: Liveness
  private readonly proxy: RequestProxy
  private readonly sse: SseHub
  private readonly status: StatusStream
  private readonly metricsScrape: ReturnType<typeof sharedScrape>
  private topic: Topic | null = null
  /** Where a request the hub failed on is logged: `log`, else stderr; `quiet` leaves it in. */
  private readonly logFault: (line: string) => void
  /** `name: message` of each error a request failed on that was logged, so each kind is logged once. */
  private readonly faults = new Set<string>()

  /** @internal Use createHub(). */
  constructor(key: symbol, given: HubOptions) {
    madeBy(key, FACTORY, "Hub", "await createHub(options)")
    this.opts = resolveOptions(given)
    this.logFault = given.log ?? ((line) => console.error(`slotbus hub: ${line}`))
    this.token = given.token ?? newToken()
    if (this.token.length < 16 || /\s/.test(this.token))
      throw new RangeError("token must be at least 16 characters without whitespace")
    const tag = newToken()
      .slice(0, 4)
      .replace(/[^A-Za-z0-9]/g, "x")
    this.healthReport = new Health(this.opts.slots)
    const counters = this.healthReport.counters
    this.registry = new Registry(this.opts, counters, tag, {
      registered: (inst) => this.liveness.watch(inst),
      evicted: (inst, reason) => {
        this.sse.closeFor(inst)
        this.healthReport.recordEviction(inst, reason)
      },
      closed: (inst) => this.metrics.left(inst),
    })
    this.liveness = new Liveness(this.opts, this.registry)
    this.proxy = new RequestProxy(this.opts, counters, this.registry, this.liveness)
    this.sse = new SseHub(this.opts, counters, this.registry, this.proxy, tag)
    this.status = new StatusStream(this.opts, async () => hubReport(await this.fullHealth(), this.url))
    this.metricsScrape = sharedScrape(() => this.metricsText(), this.opts.metricsMaxAgeMs)
  }

  /** @internal Use createHub(). */
  async start() {
    // the NATS client loads now, not at the first registration: a missing package refuses the start, not each worker
    await this.registry.remote?.loadClient()
    this.server = await serveHttp({
      port: this.opts.port,
      hostname: this.opts.hostname,
      idleTimeout: idleSecondsFor(this.opts.timeoutMs),
      fetch: (req, server) => this.fetch(req, server),
      error: (e) => this.failed(e),
    })
    try {
      this.tokenPath = this.opts.tokenFile ?? (await defaultTokenFile(this.server.port!)).path
      // its buses' names have a tag of this process: those of a hub killed on this port are nobody else's to bind
      await sweepDeadBuses(busPrefixFor(this.server.port!))
      writeTokenFile(this.tokenPath, this.token)
    } catch (e) {
      this.server.stop(true)
      throw e
    }
    this.opts.eventsTopic ||= eventsTopicFor(this.server.port!)
    try {
      this.topic = await openEventsTopic(this.opts, this.registry.remote)
    } catch (e) {
      this.server.stop(true)
      removeTokenFile(this.tokenPath, this.token)
      // eventsDurable's fields, checked by Topic.open; its JetStream package not installed
      if (e instanceof TypeError || e instanceof RangeError || e instanceof MissingPackageError) throw e
      throw new HubEventsError(
        `the hub cannot open its events topic "${this.opts.eventsTopic}": ${(e as Error).message}; pass another eventsTopic`,
        { cause: e },
      )
    }
    try {
      await this.sse.start(this.topic, this.opts.eventsDurable !== undefined)
    } catch (e) {
      this.sse.closeAll("hub-closing")
      this.topic.close()
      this.server.stop(true)
      removeTokenFile(this.tokenPath, this.token)
      throw new HubEventsError(`the hub cannot read its events' stream: ${(e as Error).message}`, { cause: e })
    }
    this.liveness.start()
  }

  /** The shared-memory topic behind `app.emit` and `GET /events` (a slotbus/events topic). */
  get eventsTopic(): string {
    return this.opts.eventsTopic
  }

  get port(): number {
    return this.server!.port!
  }
  /** Base URL of the hub, e.g. "http://127.0.0.1:3200". */
  get url(): string {
    const host = this.opts.hostname.includes(":") ? `[${this.opts.hostname}]` : this.opts.hostname
    return `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${this.port}`
  }
  /** The file workers read the token from. */
  get tokenFile(): string {
    return this.tokenPath
  }

  private fetch(req: Request, server: Server<undefined>): Response | Promise<Response> {
    const refused = refuseServed(req)
    if (refused !== null) return refused
    const url = req.url
    const start = pathStart(url)
    const q = url.indexOf("?", start)
    const path = q < 0 ? url.slice(start) : url.slice(start, q)
    if (path === "/health") return this.fullHealth().then((h) => json(200, h))
    if (path === "/health/status") return this.status.page(req)
    if (path === "/health/stream") return this.status.open(req, server)
    if (path === "/metrics") return metricsAnswer(req, this.metricsScrape)
    if (path === "/events" && req.method === "GET") return this.sse.openEvents(req, server, q < 0 ? "" : url.slice(q))
    if (path.startsWith(INTERNAL_PREFIX)) return this.internal(req, server, path.slice(INTERNAL_PREFIX.length))

    const counters = this.healthReport.counters
    const m = this.registry.routes.match(req.method, path)
    if (m === null) {
      counters.notFound++
      return json(404, { error: "not-found", message: `nothing serves ${req.method} ${path}` })
    }
    if ("allow" in m) {
      counters.methodNotAllowed++
      const allow = [...new Set(m.allow)].join(", ")
      return json(405, { error: "method-not-allowed", message: `${path} does not take ${req.method}` }, { allow })
    }
    if (this.refusing) return this.proxy.shuttingDown()
    const entry = m.value
    if (entry.sse) return this.sse.openRoute(req, server, entry, path)
    return this.proxy.forward(req, server, entry, start < 0 ? "/" : url.slice(start))
  }

  /** The catch-all: a request the hub failed on is answered 500, and the error logged (once per kind), never silent. */
  private failed(e: unknown): Response {
    const err = e instanceof Error ? e : new Error(String(e))
    const at = /\n\s*(at .*)/.exec(err.stack ?? "")?.[1]
    // its class and where it was thrown: a message may name what it failed on (a bus, a path), new each time
    const kind = `${err.name} ${at ?? err.message}`
    if (!this.faults.has(kind)) {
      if (this.faults.size >= MAX_FAULT_KINDS) this.faults.clear()
      this.faults.add(kind)
      const said = printable(`${err.name}: ${err.message}`)
      this.logFault(
        `answered 500 to a request it failed on: ${said}${at ? ` (${printable(at)})` : ""}; the same error again is not logged`,
      )
    }
    return json(500, { error: "internal", message: "the hub failed to handle this request" })
  }

  /**
   * The worker → hub endpoints: callers with the token, and only from the local machine unless the hub takes
   * workers on other hosts (`nats`): those register from wherever they run.
   */
  private async internal(req: Request, server: Server<undefined>, op: string): Promise<Response> {
    const counters = this.healthReport.counters
    const ip = server.requestIP(req)?.address ?? ""
    if (this.opts.nats === undefined && !(ip === "127.0.0.1" || ip === "::1" || ip === "::ffff:127.0.0.1")) {
      counters.forbidden++
      return json(403, {
        error: "forbidden",
        message:
          "internal endpoints answer only the local machine (a hub with a nats option takes workers on other hosts)",
      })
    }
    const auth = req.headers.get("authorization")
    if (!sameToken(auth?.startsWith("Bearer ") ? auth.slice(7) : null, this.token)) {
      counters.unauthorized++
      return json(401, {
        error: "unauthorized",
        message: "send the hub's token as `authorization: Bearer <token>`; workers read it from the hub's token file",
      })
    }
    if (req.method !== "POST")
      return json(405, { error: "method-not-allowed", message: "internal endpoints take POST" }, { allow: "POST" })
    // a worker's registration or a batch of its events: bounded as a request body was when Bun.serve held the limit
    const max = this.opts.maxRequestBodyBytes * 2 + MiB
    const bytes = await readBody(req, max)
    if (!bytes) {
      counters.tooLarge++
      const message = `an internal request's body may have at most ${max} bytes (twice maxRequestBodyBytes and 1 MiB)`
      return json(413, { error: "too-large", message }, { connection: "close" })
    }
    let body: unknown
    try {
      body = JSON.parse(utf8.decode(bytes))
    } catch {
      return json(400, { error: "bad-request", message: "body must be JSON" })
    }
    switch (op) {
      case "register":
        return this.registry.register(body as RegisterRequest, this.port)
      case "deregister":
        return this.registry.deregister(body as { name: string; instance: string })
      case "emit":
        return json(200, { delivered: list<EmitItem>(body).map((e) => this.sse.emit(e)) } satisfies DeliveryReply)
      case "push":
        return json(200, { delivered: list<PushItem>(body).map((p) => this.sse.push(p)) } satisfies DeliveryReply)
      default:
        return json(404, { error: "not-found", message: `no internal endpoint ${op}` })
    }
  }

  /**
   * @internal slotbus hub --spawn's reload: worker process `pid` gets no new request; resolves once it runs none (then
   * it is SIGTERMed, and leaves or exits).
   */
  retireWorker(pid: number): Promise<void> {
    return this.registry.retire(pid)
  }

  /**
   * @internal slotbus hub's stop (SIGTERM), before its workers are retired: from now on a request for a route gets 503
   * and its connection is closed; what runs goes on.
   */
  refuseRequests(): void {
    this.refusing = true
  }

  /**
   * @internal slotbus hub's stop, after refuseRequests: every worker process, spawned or joined from outside, leaves its
   * routes; resolves once none runs a request (then close() cuts nothing off).
   */
  async retireWorkers(): Promise<void> {
    await this.registry.retire(null)
    // a request whose body was still coming in is in flight once it is in, on a worker that drains
    while (this.proxy.uploads > 0) await sleep(5)
    await this.registry.retire(null)
  }

  health(): HubHealth {
    const sse = { ...this.sse.counts, statusClients: this.status.count }
    return this.healthReport.report(this.registry, sse, this.topic, this.proxy.bodies.bytes)
  }

  /** health() and, with the `nats` option, what the buses and the events topic know across hosts. */
  private async fullHealth(): Promise<HubHealth> {
    const h = this.health()
    if (this.opts.nats !== undefined) h.nats = await natsSections(this.registry, this.topic)
    return h
  }

  /** GET /metrics: the hub process's own series, its counters, then its workers' buses under serveStatus's names. */
  private async metricsText(): Promise<string> {
    return renderMetrics([...(await selfFamilies()), ...this[METRICS]()])
  }

  /** What GET /metrics, serveStatus and reportMetrics show of the hub: slotbus_hub_*, then slotbus_* per worker name. */
  [METRICS](): MetricFamily[] {
    const { instances, closing } = this.registry
    return [...hubFamilies(this.health()), ...this.metrics.families([...instances.values(), ...closing])]
  }

  /** What `serveStatus` shows of the hub: what GET /health reports (workers, routes, counters, its events topic). */
  async [STATUS](): Promise<StatusSection> {
    return hubSection(await this.fullHealth(), this.url)
  }

  /** Stops listening, ends SSE streams, disconnects every worker (they retry until a hub is back). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.liveness.stop()
      this.sse.closeAll("hub-closing")
      this.status.closeAll()
      this.server?.stop(true)
      await this.registry.closeAll()
      await this.topic?.close()
      if (this.tokenPath) removeTokenFile(this.tokenPath, this.token)
    })()
    return this.closing
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}

function list<T>(body: unknown): T[] {
  return (Array.isArray(body) ? body : [body]) as T[]
}

/**
 * The hub's events topic: made with eventsCapacity, or, when workers still hold one from an earlier hub of
 * another eventsCapacity, that one as it is (its events can still be replayed), with a line saying so.
 */
async function openEventsTopic(o: ResolvedOptions, remote: Nats | undefined): Promise<Topic> {
  // durable: across hosts, its events kept in a JetStream stream (§11.6)
  const durable = o.eventsDurable === undefined || remote === undefined ? {} : { remote, durable: o.eventsDurable }
  try {
    return await Topic.open(o.eventsTopic!, { capacity: o.eventsCapacity, onWarning: o.log, ...durable })
  } catch (e) {
    if (!(e instanceof SettingsMismatchError)) throw e
    o.log(
      `the events topic "${o.eventsTopic}" is still held with ${e.actual} bytes, not eventsCapacity ${e.asked}: using it as it is`,
    )
    return Topic.open(o.eventsTopic!, { onWarning: o.log, ...durable })
  }
}
