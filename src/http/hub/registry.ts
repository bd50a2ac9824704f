// Which worker processes the hub knows, which routes each worker name owns, and how a process leaves.
import { type ListenOptions, RemoteUnavailableError, SlotBus } from "../../core/index.ts"
import { Crowd, crowdTogether } from "../../core/internal.ts"
import { nameProblem, sleep } from "../../kit/index.ts"
import { RouteError } from "../errors.ts"
import { methodMatches, parseRoute, RouteTable, type Route } from "../routes.ts"
import { INSTANCE_NAME, WORKER_NAME, type RegisterReply, type RegisterRequest } from "../wire.ts"
import { json, type ResolvedOptions } from "./options.ts"
import type { HubCounters } from "./counters.ts"
import { nats, type Nats } from "../../nats/index.ts"

/** How the names of a hub's buses on `port` start (each then has its app's name and a tag of its hub). */
export const busPrefixFor = (port: number) => `hub${port}.`

/**
 * A worker process's life as the hub sees it: registered and `joining` until it attaches over shared
 * memory, `connected` while it serves, `draining` after it deregistered (no new requests; running ones
 * finish), `gone` once evicted or drained. Only `transition` writes it.
 */
export type InstanceState = "joining" | "connected" | "draining" | "gone"

const NEXT: Record<InstanceState, readonly InstanceState[]> = {
  joining: ["connected", "draining", "gone"],
  connected: ["draining", "gone"],
  draining: ["gone"],
  gone: [],
}

/** Moves `inst` to `to` if its lifecycle allows it; says whether it moved. */
export function transition(inst: WorkerInstance, to: InstanceState): boolean {
  if (!NEXT[inst.state].includes(to)) return false
  inst.state = to
  return true
}

/** Joining or connected: it may still get requests. */
export const isAttached = (inst: WorkerInstance) => inst.state === "joining" || inst.state === "connected"

/** One worker process: its own bus, the routes it serves, what it is doing. */
export interface WorkerInstance {
  readonly key: string
  readonly name: string
  readonly instance: string
  pid: number
  readonly bus: SlotBus
  readonly routes: RouteEntry[]
  state: InstanceState
  lastSeen: number
  inFlight: number
  served: number
  missedPings: number
  /** Times this name + instance registered again from a new pid while the hub ran (a restarted replica). */
  restarts: number
}

/** One route (method + shape), owned by one worker name, served by that name's attached instances. */
export interface RouteEntry {
  route: Route
  owner: string
  sse: boolean
  instances: WorkerInstance[]
  /** Where the next round-robin pick starts. */
  next: number
}

export interface RegistryHooks {
  /** A new instance: liveness watches it attach. */
  registered(inst: WorkerInstance): void
  /** An instance left (evicted, replaced, deregistered): its SSE clients end, health records it. */
  evicted(inst: WorkerInstance, reason: string): void
  /** Its bus closed, after what it still ran (a worker leaving on purpose) settled: its counts are final. */
  closed(inst: WorkerInstance): void
}

const KEEP_RETIRED = 1000
/** The most routes one registration may declare: each is checked against the table (a 20,000-route one held the hub 12 s). */
export const MAX_ROUTES = 1024

/** A request's head (method, path, headers) as a worker's bus takes it, at most; a larger one gets 431. */
export const MAX_HEAD_BYTES = 64 * 1024

export class Registry {
  readonly routes = new RouteTable<RouteEntry>()
  readonly instances = new Map<string, WorkerInstance>()
  /** Instances out of service whose bus has not closed yet: a leaving worker's requests still count. */
  readonly closing = new Set<WorkerInstance>()
  /** Bus name → why its instance left, so a worker coming back can learn it was replaced. */
  private readonly retired = new Map<string, string>()
  /** Name/instance → the pid that last registered it and how often it came back from another pid. */
  private readonly lastOf = new Map<string, { pid: number; restarts: number }>()
  private nextBus = 1
  private readonly crowd = new Crowd() // its buses are one pool: their workers' processes count together
  /** With the `nats` option: the one connection of every instance's bus (and the events topic's), closed with the last. */
  readonly remote: Nats | undefined

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly counters: HubCounters,
    private readonly busTag: string,
    private readonly hooks: RegistryHooks,
  ) {
    this.remote = opts.nats === undefined ? undefined : nats(opts.nats)
  }

  /**
   * A registration's bus, across hosts when the hub takes workers over NATS. While NATS cannot be reached it serves
   * this host's workers alone (shared memory needs no NATS), and says so; the worker's next registration tries again.
   */
  private async listen(name: string, options: ListenOptions): Promise<SlotBus> {
    if (this.remote === undefined) return SlotBus.listen(name, options)
    try {
      return await SlotBus.listen(name, { ...options, remote: this.remote })
    } catch (e) {
      if (!(e instanceof RemoteUnavailableError)) throw e
      this.opts.log(`NATS is unreachable, so bus ${name} serves workers on this host only: ${e.message}`)
      return SlotBus.listen(name, options)
    }
  }

  async register(r: RegisterRequest, port: number): Promise<Response> {
    const bad = (message: string) => json(400, { error: "bad-request", message })
    const badName = nameProblem(r?.name, WORKER_NAME) ?? nameProblem(r.instance, INSTANCE_NAME)
    if (badName) return bad(badName.message)
    if (!Number.isInteger(r.pid) || !Array.isArray(r.routes)) return bad("pid and routes are required")
    const replacedBy = r.previousBus ? this.retired.get(r.previousBus) : undefined
    if (replacedBy === "replaced")
      return json(409, {
        error: "replaced",
        message: `instance "${r.instance}" of "${r.name}" was replaced by a newer registration; this one stops`,
      })

    if (r.routes.length > MAX_ROUTES)
      return bad(
        `${r.routes.length} routes in one registration, more than ${MAX_ROUTES}; serve them under fewer patterns (":param", "*")`,
      )
    const routes: { route: Route; sse: boolean }[] = []
    const declared = new Set<string>()
    try {
      for (const d of r.routes) {
        if (typeof d !== "object" || d === null) return bad(`a route is { method, pattern, sse? }, got ${String(d)}`)
        const route = parseRoute(String(d.method), String(d.pattern))
        const key = `${route.method} ${route.shape}`
        if (declared.has(key)) return bad(`route ${route.method} ${route.pattern} is declared twice`)
        declared.add(key)
        routes.push({ route, sse: d.sse === true })
      }
    } catch (e) {
      if (e instanceof RouteError) return bad(e.message)
      throw e
    }

    const busName = `${busPrefixFor(port)}${r.name}.${this.busTag}${(this.nextBus++).toString(36)}`
    const bus = await this.listen(busName, {
      slots: this.opts.slots,
      maxBodyBytes: Math.max(this.opts.maxRequestBodyBytes, this.opts.chunkBytes, this.opts.streamWindowBytes),
      maxHeadBytes: MAX_HEAD_BYTES,
      timeoutMs: this.opts.timeoutMs,
      streamWindowBytes: this.opts.streamWindowBytes,
      idle: this.opts.idle,
    })
    crowdTogether(bus, this.crowd)
    // From here on synchronous, so two registrations racing for one route cannot both win.
    const conflicts: { route: string; owner: string }[] = []
    for (const { route } of routes) {
      const other = this.routes.find((o, e) => e.owner !== r.name && this.isLive(e.owner) && overlaps(o, route))
      if (other) conflicts.push({ route: `${route.method} ${route.pattern}`, owner: other.value.owner })
    }
    if (conflicts.length > 0) {
      void bus.close({ drain: false })
      this.counters.conflicts++
      const list = conflicts.map((c) => `${c.route} (served by "${c.owner}")`).join(", ")
      return json(409, {
        error: "route-conflict",
        conflicts,
        message: `worker "${r.name}" cannot take ${list}; change the paths, or register under the owner's name to share its load`,
      })
    }

    const key = `${r.name}/${r.instance}`
    const old = this.instances.get(key)
    if (old) this.evict(old, "replaced", { drain: true }) // the old process may still run requests: they finish
    const who = `worker "${r.name}" instance ${r.instance}`
    if (old) this.opts.log(`${who} restarted: pid ${old.pid} replaced by pid ${r.pid}, ${routes.length} routes`)
    else this.opts.log(`${who} (pid ${r.pid}) ${r.previousBus ? "rejoined" : "registered"}: ${routes.length} routes`)
    const last = this.lastOf.get(key)
    const restarts = (last?.restarts ?? 0) + (last && last.pid !== r.pid ? 1 : 0)
    this.lastOf.delete(key) // re-inserted last: the oldest is dropped first
    this.lastOf.set(key, { pid: r.pid, restarts })
    if (this.lastOf.size > KEEP_RETIRED) this.lastOf.delete(this.lastOf.keys().next().value!)
    const inst: WorkerInstance = {
      key,
      name: r.name,
      instance: r.instance,
      pid: r.pid,
      bus,
      routes: [],
      state: "joining",
      lastSeen: Date.now(),
      inFlight: 0,
      served: 0,
      missedPings: 0,
      restarts,
    }
    this.instances.set(key, inst)
    this.hooks.registered(inst)
    for (const { route, sse } of routes) {
      let entry = this.routes.find(
        (o, e) => e.owner === r.name && o.method === route.method && o.shape === route.shape,
      )?.value
      if (!entry) {
        // Whoever else held an overlapping route has no live workers (else it would have conflicted): take it over.
        this.routes.remove((o, e) => e.owner !== r.name && overlaps(o, route))
        entry = { route, owner: r.name, sse, instances: [], next: 0 }
        this.routes.add(route, entry)
      }
      entry.sse = sse
      entry.instances.push(inst)
      inst.routes.push(entry)
    }
    this.counters.registrations++
    return json(200, {
      bus: busName,
      chunkBytes: this.opts.chunkBytes,
      topic: this.opts.eventsTopic,
      nats: this.opts.nats !== undefined,
      eventsNats: this.opts.eventsDurable !== undefined,
    } satisfies RegisterReply)
  }

  /** A worker leaving on purpose: no new requests; the ones it runs finish before its bus closes. */
  deregister(r: { name: string; instance: string }): Response {
    const inst = this.instances.get(`${r?.name}/${r?.instance}`)
    if (inst) this.evict(inst, "deregistered", { drain: true })
    return json(200, { ok: true })
  }

  /**
   * A deploy retires worker process `pid` (slotbus hub --spawn's reload, before it SIGTERMs it), or a stopping hub every
   * process (`null`): it leaves its routes, so it gets no new request, and this resolves once it runs none. It stays
   * registered until it deregisters or exits.
   */
  async retire(pid: number | null): Promise<void> {
    // with those a successor of its instance's name replaced, still draining
    const leaving = [...this.instances.values(), ...this.closing].filter((i) => pid === null || i.pid === pid)
    for (const inst of leaving)
      for (const entry of inst.routes) entry.instances = entry.instances.filter((i) => i !== inst)
    while (leaving.some((i) => i.state !== "gone" && i.inFlight > 0)) await sleep(5)
  }

  /** Takes `inst` out of service: out of the registry and its routes, its bus closed (after draining if asked). */
  evict(inst: WorkerInstance, reason: string, { drain = false } = {}) {
    if (!transition(inst, drain ? "draining" : "gone")) return
    if (this.instances.get(inst.key) === inst) this.instances.delete(inst.key)
    for (const entry of inst.routes) entry.instances = entry.instances.filter((i) => i !== inst)
    this.retired.set(inst.bus.name, reason)
    if (this.retired.size > KEEP_RETIRED) this.retired.delete(this.retired.keys().next().value!)
    this.hooks.evicted(inst, reason)
    if (reason !== "replaced")
      this.opts.log(
        `worker "${inst.name}" instance ${inst.instance} (pid ${inst.pid}) ${drain ? "left" : "evicted"}: ${reason}`,
      )
    this.closing.add(inst)
    void inst.bus.close({ drain, timeoutMs: this.opts.timeoutMs }).finally(() => {
      if (drain) transition(inst, "gone")
      this.closing.delete(inst)
      this.hooks.closed(inst)
    })
  }

  /** Whether any process of worker `name` is registered. */
  isLive(name: string): boolean {
    for (const inst of this.instances.values()) if (inst.name === name) return true
    return false
  }

  /**
   * The instance to serve the next request on `entry`: with `pack`, the first connected one that answers quickly
   * enough to take it without another being woken (its bus's packRoom, dispatcher.ts's pick); else connected first,
   * then fewest in flight, round robin on ties (an SSE connection, held for long, is spread so).
   */
  pick(entry: RouteEntry, pack = true): WorkerInstance | null {
    const list = entry.instances
    const n = list.length
    if (n === 1) return list[0]!
    if (n === 0) return null
    if (pack) for (const inst of list) if (inst.state === "connected" && inst.bus.packRoom) return inst
    let best: WorkerInstance | null = null
    const from = entry.next++ % n
    for (let k = 0; k < n; k++) {
      const inst = list[(from + k) % n]!
      const up = inst.state === "connected"
      const bestUp = best?.state === "connected"
      if (!best || (up && !bestUp) || (up === bestUp && inst.inFlight < best.inFlight)) best = inst
    }
    return best
  }

  async closeAll(): Promise<void> {
    const all = [...this.instances.values()]
    this.instances.clear()
    for (const inst of all) transition(inst, "gone")
    await Promise.all(all.map((i) => i.bus.close({ drain: false })))
  }
}

/** Two routes contend when their shapes agree and their methods can both take one request. */
function overlaps(a: Route, b: Route): boolean {
  return (
    a.shape === b.shape &&
    (a.method === b.method || methodMatches(a.method, b.method) || methodMatches(b.method, a.method))
  )
}
