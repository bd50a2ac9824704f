// Every public entry point that takes an options object (or a filter, an event, a rule, a config) refuses a
// misspelt name: a TypeError naming it and the name meant, thrown before anything exists, so nothing is left
// behind (no fd, no child process, no subscriber, no claim, no request). Issue 19: `createHub({ prot })` ran on
// 3200, `subscribe({ typ })` subscribed to everything, `superviseWorkers({ instance: 2 })` ran one.
// And the classes only a factory makes refuse `new`, pointing at the factory.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { closeGracefully, nodeHandler, SlotBus, SlotWorker, Supervisor, superviseWorkers } from "../src/index.ts"
import { createHub, Hub, hubWorker } from "../src/http/index.ts"
import { Subscription, Topic } from "../src/events/index.ts"
import { Contest, Lease } from "../src/leases/index.ts"
import { StdioBus, StdioConfigError, StdioListener } from "../src/stdio/index.ts"
import { settledCensus } from "./support/fds.ts"
import { busName, sentToWorkers, stopAll } from "./support/helpers.ts"
import { workerConfig } from "./support/stdio/stdio.ts"

/** Pids of this process's children (a spawned supervisor instance would show here). */
function children(): number[] {
  const out: number[] = []
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid) out.push(Number(pid))
    } catch {} // exited while we looked
  }
  return out.sort()
}

interface Case<S = unknown> {
  /** The entry point, as the test name says it. */
  api: string
  typo: string
  meant: string
  /** The error class (default TypeError: the stdio config keeps its StdioConfigError). */
  error?: abstract new (
    ...a: never[]
  ) => Error
  /** Made before the census: what the call needs (a running supervisor, a connected worker). */
  setup?: () => Promise<S> | S
  call: (s: S) => unknown
  /** What must still hold after the refused call (the bus still open, no new subscriber, …). */
  still?: (s: S) => unknown
  /** Ends what setup made, and whatever the old code made when it accepted the typo. */
  cleanup?: (s: S, made: unknown) => unknown
}
const it = <S>(c: Case<S>) => c as Case

async function expectRefused(c: Case) {
  const s = await c.setup?.()
  const before = await settledCensus()
  const kids = children()
  let made: unknown
  let error: unknown
  try {
    made = await c.call(s)
  } catch (e) {
    error = e
  }
  try {
    if (error === undefined) throw new Error(`${c.api} accepted the misspelt "${c.typo}"`)
    expect(error).toBeInstanceOf(c.error ?? TypeError)
    if (error instanceof StdioConfigError)
      expect(error.field.split(".").at(-1)).toBe(c.typo) // "pools[0].comand"
    else expect((error as Error).message).toContain(`"${c.typo}"`)
    expect((error as Error).message).toContain(`did you mean "${c.meant}"?`)
    expect(children()).toEqual(kids)
    expect((await settledCensus()).total).toBeLessThanOrEqual(before.total)
    await c.still?.(s)
  } finally {
    await c.cleanup?.(s, made)
  }
}

const closeIf = async (made: unknown) => {
  if (made && typeof (made as { close?: unknown }).close === "function") await (made as { close(): unknown }).close()
}
const SLEEPER = [process.execPath, "-e", "setInterval(() => {}, 1 << 30)"]

let bus: SlotBus
let worker: SlotWorker
let replyError: unknown
let topic: Topic
let contest: Contest
let stdio: StdioBus

beforeAll(async () => {
  bus = await SlotBus.listen(busName("opts"))
  worker = await SlotWorker.connect(bus.name, (req) => {
    if (req.path !== "/reply-typo") return "ok"
    try {
      return req.reply(0, { header: { a: "b" } } as never)
    } catch (e) {
      replyError = e
      return "refused"
    }
  })
  await bus.waitForWorkers(1)
  topic = await Topic.open(busName("opts"), { capacity: 1 << 16 })
  contest = await Contest.open(busName("opts"))
  stdio = StdioBus.fromConfig(workerConfig())
  await stdio.start()
})

afterAll(async () => {
  await worker?.close()
  await bus?.close({ drain: false })
  topic?.close()
  contest?.close()
  await stdio?.stop({ timeoutMs: 0, killAfterMs: 200 })
  await stopAll()
})

const S = { kind: 1, label: "opts" }

describe("the core (slotbus)", () => {
  const cases: Case[] = [
    it({
      api: "SlotBus.listen",
      typo: "slot",
      meant: "slots",
      setup: () => busName("opts"),
      call: (name) => SlotBus.listen(name, { slot: 4 } as never),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "nodeHandler",
      typo: "onErr",
      meant: "onError",
      setup: () => bus,
      call: (b) => nodeHandler(b, { onErr: () => new Response() } as never),
    }),
    it({
      api: "closeGracefully",
      typo: "timeOutMs",
      meant: "timeoutMs",
      setup: () => ({ stop: () => Promise.resolve(), pendingRequests: 0 }),
      call: (server) => closeGracefully(server, { timeOutMs: 1 } as never),
    }),
    it({
      api: "SlotBus.listen idle",
      typo: "parkAfterM",
      meant: "parkAfterMs",
      setup: () => busName("opts"),
      call: (name) => SlotBus.listen(name, { idle: { spinMicros: 5, parkAfterM: 1 } as never }),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "bus.request (the request)",
      typo: "pth",
      meant: "path",
      setup: () => sentToWorkers(bus),
      call: () => bus.request({ pth: "/x" } as never),
      still: (sent) => expect(sentToWorkers(bus)).toBe(sent),
    }),
    it({
      api: "bus.request",
      typo: "timeout",
      meant: "timeoutMs",
      setup: () => sentToWorkers(bus),
      call: () => bus.request({ path: "/" }, { timeout: 5 } as never),
      still: (sent) => expect(sentToWorkers(bus)).toBe(sent),
    }),
    it({
      api: "bus.call",
      typo: "borow",
      meant: "borrow",
      setup: () => sentToWorkers(bus),
      call: () => bus.call("x", { borow: true } as never),
      still: (sent) => expect(sentToWorkers(bus)).toBe(sent),
    }),
    it({
      api: "bus.fetch",
      typo: "timeoutMS",
      meant: "timeoutMs",
      setup: () => sentToWorkers(bus),
      call: () => bus.fetch(new Request("http://x/"), { timeoutMS: 5 } as never),
      still: (sent) => expect(sentToWorkers(bus)).toBe(sent),
    }),
    it({
      api: "bus.remote",
      typo: "signl",
      meant: "signal",
      call: () => bus.remote({ signl: AbortSignal.abort() } as never),
    }),
    it({
      api: "bus.invoke",
      typo: "timeout",
      meant: "timeoutMs",
      setup: () => sentToWorkers(bus),
      call: () => bus.invoke("add", [1, 2], { timeout: 5 } as never),
      still: (sent) => expect(sentToWorkers(bus)).toBe(sent),
    }),
    it({
      api: "bus.waitForWorkers",
      typo: "timout",
      meant: "timeoutMs",
      call: () => bus.waitForWorkers(1, { timout: 5 } as never),
    }),
    it({
      api: "bus.close",
      typo: "drian",
      meant: "drain",
      call: () => bus.close({ drian: false } as never),
      still: async () => expect(await bus.call("still open?")).toBeInstanceOf(Uint8Array),
    }),
    it({
      api: "SlotWorker.connect",
      typo: "waitForHubMS",
      meant: "waitForHubMs",
      setup: () => bus.workerCount,
      call: () => SlotWorker.connect(bus.name, () => "x", { waitForHubMS: 5 } as never),
      still: (n) => expect(bus.workerCount).toBe(n),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "SlotWorker.expose",
      typo: "reconect",
      meant: "reconnect",
      setup: () => bus.workerCount,
      call: () => SlotWorker.expose(bus.name, { f: () => 1 }, { reconect: true } as never),
      still: (n) => expect(bus.workerCount).toBe(n),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "SlotWorker.connect idle",
      typo: "spin",
      meant: "spinMicros",
      setup: () => bus.workerCount,
      call: () =>
        SlotWorker.connect(bus.name, () => "x", { idle: { spinMicros: 1, parkAfterMs: 1, spin: 5 } as never }),
      still: (n) => expect(bus.workerCount).toBe(n),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "worker.close",
      typo: "timeout",
      meant: "timeoutMs",
      setup: () => SlotWorker.connect(bus.name, () => "x"),
      call: (w) => w.close({ timeout: 5 } as never),
      still: (w) => expect(w.connected).toBe(true),
      cleanup: (w) => w.close(),
    }),
    it({
      api: "req.reply (in a handler)",
      typo: "header",
      meant: "headers",
      call: async () => {
        replyError = undefined
        await bus.request({ path: "/reply-typo" }, { timeoutMs: 10_000 })
        if (replyError) throw replyError
      },
    }),
    it({
      api: "new Supervisor",
      typo: "instance",
      meant: "instances",
      call: () => new Supervisor({ command: SLEEPER, instance: 2 } as never),
    }),
    it({
      api: "superviseWorkers",
      typo: "instance",
      meant: "instances",
      call: () => superviseWorkers(null, { command: SLEEPER, instance: 2 } as never),
      cleanup: (_, made) => (made as Supervisor | undefined)?.stop({ killGraceMs: 0 }),
    }),
    it({
      api: "new Supervisor restart",
      typo: "windowMS",
      meant: "windowMs",
      call: () => new Supervisor({ command: SLEEPER, restart: { windowMS: 1 } } as never),
    }),
    it({
      api: "superviseWorkers restart",
      typo: "maxRestart",
      meant: "maxRestarts",
      call: () => superviseWorkers(null, { command: SLEEPER, restart: { maxRestart: 1 } } as never),
      cleanup: (_, made) => (made as Supervisor | undefined)?.stop({ killGraceMs: 0 }),
    }),
    it({
      api: "superviseWorkers (the required command)",
      typo: "comand",
      meant: "command",
      call: () => superviseWorkers(null, { comand: SLEEPER } as never),
      cleanup: (_, made) => (made as Supervisor | undefined)?.stop({ killGraceMs: 0 }),
    }),
    it({
      api: "supervisor.stop",
      typo: "killGrace",
      meant: "killGraceMs",
      setup: () => {
        const sup = new Supervisor({ command: SLEEPER })
        sup.start()
        return sup
      },
      call: (sup) => sup.stop({ killGrace: 0 } as never),
      still: (sup) => expect(sup.state).toBe("running"),
      cleanup: (sup) => sup.stop({ killGraceMs: 0 }),
    }),
  ]
  test.each(cases.map((c) => [c.api, c.typo, c.meant, c] as const))(
    '%s refuses "%s" (meant "%s") and creates nothing',
    (_api, _typo, _meant, c) => expectRefused(c),
  )
})

describe("the HTTP hub (slotbus/http)", () => {
  const cases: Case[] = [
    it({
      api: "createHub",
      typo: "prot",
      meant: "port",
      call: () => createHub({ prot: 0, quiet: true } as never),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "createHub",
      typo: "tokn",
      meant: "token",
      call: () => createHub({ port: 0, quiet: true, tokn: "x".repeat(32) } as never),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "createHub idle",
      typo: "spinMicro",
      meant: "spinMicros",
      call: () => createHub({ port: 0, quiet: true, idle: { spinMicro: 1, parkAfterMs: 1 } as never }),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "hubWorker",
      typo: "tokn",
      meant: "token",
      call: () => hubWorker("http://127.0.0.1:1", "opts", { tokn: "x".repeat(32) } as never),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "hubWorker",
      typo: "maxBackofMs",
      meant: "maxBackoffMs",
      call: () => hubWorker("http://127.0.0.1:1", "opts", { maxBackofMs: 10 } as never),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "app.push",
      typo: "evnt",
      meant: "event",
      setup: () => hubWorker("http://127.0.0.1:1", "opts", { token: "x".repeat(32), log: () => {} }),
      call: (app) => app.push("/x", "data", { evnt: "e" } as never),
      cleanup: (app) => app.close(),
    }),
    it({
      api: "app.push (the target)",
      typo: "patern",
      meant: "pattern",
      setup: () => hubWorker("http://127.0.0.1:1", "opts", { token: "x".repeat(32), log: () => {} }),
      call: (app) => app.push({ patern: "/x/:id" } as never, "data"),
      cleanup: (app) => app.close(),
    }),
  ]
  test.each(cases.map((c) => [c.api, c.typo, c.meant, c] as const))(
    '%s refuses "%s" (meant "%s") and creates nothing',
    (_api, _typo, _meant, c) => expectRefused(c),
  )
})

describe("topics (slotbus/events)", () => {
  const subscribers = () => topic.stats().subscribers.length
  const cases: Case[] = [
    it({
      api: "Topic.open",
      typo: "capacty",
      meant: "capacity",
      call: () => Topic.open(busName("opts"), { capacty: 1 << 16 } as never),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "topic.subscribe (the filter)",
      typo: "typ",
      meant: "type",
      setup: subscribers,
      call: () => topic.subscribe({ typ: "job.done" } as never),
      still: (n) => expect(subscribers()).toBe(n),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "topic.subscribe (the filter)",
      typo: "routng",
      meant: "routing",
      setup: subscribers,
      call: () => topic.subscribe({ type: "job.done", routng: { user: "u1" } } as never),
      still: (n) => expect(subscribers()).toBe(n),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "topic.subscribe",
      typo: "queu",
      meant: "queue",
      setup: subscribers,
      call: () => topic.subscribe({}, { queu: 5 } as never),
      still: (n) => expect(subscribers()).toBe(n),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "topic.subscribe idle",
      typo: "parkAfter",
      meant: "parkAfterMs",
      setup: subscribers,
      call: () => topic.subscribe({}, { idle: { spinMicros: 1, parkAfterMs: 1, parkAfter: 2 } as never }),
      still: (n) => expect(subscribers()).toBe(n),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "sub.receive",
      typo: "timout",
      meant: "timeoutMs",
      setup: () => topic.subscribe(),
      call: (sub) => sub.receive({ timout: 5 } as never),
      cleanup: (sub) => sub.close(),
    }),
    it({
      api: "topic.publish",
      typo: "dat",
      meant: "data",
      setup: () => topic.stats().tail,
      call: () => topic.publish({ type: "x", dat: 1 } as never),
      still: (tail) => expect(topic.stats().tail).toBe(tail),
    }),
    it({
      api: "topic.publish",
      typo: "typ",
      meant: "type",
      setup: () => topic.stats().tail,
      call: () => topic.publish({ typ: "x" } as never),
      still: (tail) => expect(topic.stats().tail).toBe(tail),
    }),
    it({
      api: "topic.bind",
      typo: "fil",
      meant: "fill",
      call: () => topic.bind({ type: "r", keys: ["a", "b"], fil: "c" } as never),
    }),
  ]
  test.each(cases.map((c) => [c.api, c.typo, c.meant, c] as const))(
    '%s refuses "%s" (meant "%s") and creates nothing',
    (_api, _typo, _meant, c) => expectRefused(c),
  )
})

describe("contests (slotbus/leases)", () => {
  const claims = () => contest.stats().claims
  const cases: Case[] = [
    it({
      api: "Contest.open",
      typo: "capacty",
      meant: "capacity",
      call: () => Contest.open(busName("opts"), { capacty: 64 } as never),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "contest.tryClaim",
      typo: "ttl",
      meant: "ttlMs",
      setup: claims,
      call: () => contest.tryClaim(S, { ttl: 100 } as never),
      still: (n) => expect(claims()).toBe(n),
      cleanup: (_, made) => (made as { lease?: Lease } | undefined)?.lease?.release(),
    }),
    it({
      api: "contest.tryClaimAt",
      typo: "ownr",
      meant: "owner",
      setup: claims,
      call: () => contest.tryClaimAt(S, { ownr: "me" } as never, Date.now()),
      still: (n) => expect(claims()).toBe(n),
      cleanup: (_, made) => (made as { lease?: Lease } | undefined)?.lease?.release(),
    }),
    it({
      api: "contest.claim",
      typo: "timeout",
      meant: "timeoutMs",
      setup: claims,
      call: () => contest.claim(S, { timeout: 5 } as never),
      still: (n) => {
        expect(claims()).toBe(n)
        expect(contest.waiterState()).toEqual({ waiting: 0, thread: false })
      },
      cleanup: (_, made) => (made as Lease | undefined)?.release(),
    }),
  ]
  test.each(cases.map((c) => [c.api, c.typo, c.meant, c] as const))(
    '%s refuses "%s" (meant "%s") and creates nothing',
    (_api, _typo, _meant, c) => expectRefused(c),
  )

  test("lease.renew takes a number: an options object is a TypeError saying so, and the lease is untouched", () => {
    const r = contest.tryClaim({ kind: 2, label: "renew" })
    if (!r.claimed) throw new Error("not claimed")
    try {
      expect(() => r.lease.renew({ ttlMs: 100 } as never)).toThrow(/renew\(30_000\)/)
      expect(r.lease.expiresAt).toBe(Infinity)
      expect(r.lease.held).toBe(true)
    } finally {
      r.lease.release()
    }
  })
})

describe("stdio pools (slotbus/stdio)", () => {
  const pool = workerConfig().pools[0]!
  const out = () => stdio.stats().messagesOut
  const cases: Case[] = [
    it({
      api: "StdioBus.fromConfig",
      typo: "pool",
      meant: "pools",
      error: StdioConfigError,
      call: () => StdioBus.fromConfig({ pool: [pool] } as never),
    }),
    it({
      api: "StdioBus.fromConfig (a pool)",
      typo: "comand",
      meant: "command",
      error: StdioConfigError,
      call: () => StdioBus.fromConfig({ pools: [{ ...pool, comand: "x" }] } as never),
    }),
    it({
      api: "StdioBus.fromConfig (the limits)",
      typo: "max_restart",
      meant: "max_restarts",
      error: StdioConfigError,
      call: () => StdioBus.fromConfig({ pools: [pool], limits: { max_restart: 1 } } as never),
    }),
    it({
      api: "stdio bus.request",
      typo: "timeout",
      meant: "timeoutMs",
      setup: out,
      call: () => stdio.request("echo", {}, { timeout: 5 } as never),
      still: (n) => expect(out()).toBe(n),
    }),
    it({
      api: "stdio bus.request",
      typo: "sesionId",
      meant: "sessionId",
      setup: out,
      call: () => stdio.request("echo", {}, { sesionId: "s1" } as never),
      still: (n) => expect(out()).toBe(n),
    }),
    it({
      api: "stdio bus.notify",
      typo: "pol",
      meant: "pool",
      setup: out,
      call: () => stdio.notify("hello", {}, { pol: "w" } as never),
      still: (n) => expect(out()).toBe(n),
    }),
    it({
      api: "stdio bus.listen",
      typo: "maxClient",
      meant: "maxClients",
      call: () => stdio.listen("tcp:127.0.0.1:0", { maxClient: 1 } as never),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "stdio bus.attachClient",
      typo: "sessionPerclient",
      meant: "sessionPerClient",
      setup: () => stdio.clientCount,
      call: () => stdio.attachClient(() => {}, { sessionPerclient: false } as never),
      still: (n) => expect(stdio.clientCount).toBe(n),
      cleanup: (_, made) => closeIf(made),
    }),
    it({
      api: "stdio bus.stop",
      typo: "killAfter",
      meant: "killAfterMs",
      call: () => stdio.stop({ killAfter: 0 } as never),
      still: () => expect(stdio.state).toBe("running"),
    }),
  ]
  test.each(cases.map((c) => [c.api, c.typo, c.meant, c] as const))(
    '%s refuses "%s" (meant "%s") and creates nothing',
    (_api, _typo, _meant, c) => expectRefused(c),
  )
})

test("src/http/README.md's option tables list exactly the options createHub and hubWorker take", async () => {
  const readme = readFileSync(join(import.meta.dir, "..", "src", "http", "README.md"), "utf8")
  const table = (call: string) => {
    const rows = readme.split(`${call}:\n\n`)[1]!.split("\n\n")[0]!.split("\n").slice(2) // past the head and |---|
    return rows.map((r) => /^\| `(\w+)` \|/.exec(r)![1]).sort()
  }
  const taken = async (make: () => unknown) => {
    const e = await Promise.resolve()
      .then(make)
      .then(
        () => null,
        (e: Error) => e,
      )
    return e!.message.split("the options are ")[1]!.split(", ").sort()
  }
  expect(table("`createHub(options)`")).toEqual(await taken(() => createHub({ "?": 1 } as never)))
  expect(table("`hubWorker(hubUrl, name, options)`")).toEqual(
    await taken(() => hubWorker("http://127.0.0.1:1", "x", { "?": 1 } as never)),
  )
})

describe("classes only a factory makes", () => {
  const ctor = (c: unknown) => c as new (...a: unknown[]) => unknown
  test.each([
    ["SlotBus", "SlotBus.listen", () => new (ctor(SlotBus))()],
    ["SlotWorker", "SlotWorker.connect", () => new (ctor(SlotWorker))()],
    ["Hub", "createHub", () => new (ctor(Hub))({ port: 0 })],
    ["Topic", "Topic.open", () => new (ctor(Topic))()],
    ["Subscription", "topic.subscribe", () => new (ctor(Subscription))()],
    ["Contest", "Contest.open", () => new (ctor(Contest))()],
    ["Lease", "contest.tryClaim", () => new (ctor(Lease))()],
    ["StdioBus", "StdioBus.fromConfig", () => new (ctor(StdioBus))(workerConfig())],
    ["StdioListener", "bus.listen", () => new (ctor(StdioListener))()],
  ] as const)("new %s is a TypeError pointing at %s, and makes nothing", async (_cls, factory, make) => {
    const before = await settledCensus()
    const kids = children()
    expect(make).toThrow(TypeError)
    expect(make).toThrow(factory)
    expect(children()).toEqual(kids)
    expect((await settledCensus()).total).toBeLessThanOrEqual(before.total)
  })
})

// A count no pool could run, or a stdio setting no spawn takes: refused before a process starts. A pool of 1e6
// instances once spawned 1,300 processes in 10 s on a 2-CPU machine, its front deaf to SIGTERM while it did.
describe("a pool's counts and stdio", () => {
  const refused = async (call: () => unknown, error: new (m: string) => Error, says: string[]) => {
    const kids = children()
    let made: unknown
    try {
      made = await call()
    } catch (e) {
      expect(e).toBeInstanceOf(error)
      for (const s of says) expect((e as Error).message).toContain(s)
      expect(children()).toEqual(kids)
      return
    }
    await (made as Supervisor).stop({ killGraceMs: 0 })
    throw new Error(`accepted; it started ${children().length - kids.length} processes`)
  }
  test("instances past one supervisor's bound (1024), or past the bus's maxWorkers, are a RangeError naming them", async () => {
    const small = await SlotBus.listen(busName("opts-small"), { maxWorkers: 2 })
    try {
      await refused(() => superviseWorkers(null, { command: SLEEPER, instances: 1e6 }), RangeError, [
        "instances",
        "1024",
      ])
      await refused(() => new Supervisor({ command: SLEEPER, instances: 1025 }), RangeError, ["instances", "1024"])
      await refused(() => superviseWorkers(small, { command: SLEEPER, instances: 20 }), RangeError, [
        "instances",
        "maxWorkers",
      ])
      await refused(() => superviseWorkers(small, { command: SLEEPER, instances: { min: 1, max: 3 } }), RangeError, [
        "instances.max",
        "maxWorkers",
      ])
      const sup = new Supervisor({ command: SLEEPER, instances: 0 })
      await refused(() => sup.resize(1e6), RangeError, ["supervisor.resize", "1024"])
      expect(sup.instances.length).toBe(0)
    } finally {
      await small.close({ drain: false })
    }
  })
  test('stdin, stdout or stderr other than "pipe", "ignore" or "inherit" is a TypeError naming it; instances "2" is quoted', async () => {
    for (const k of ["stdin", "stdout", "stderr"])
      await refused(() => superviseWorkers(null, { command: SLEEPER, [k]: "file" }), TypeError, [k, '"file"'])
    await refused(() => superviseWorkers(null, { command: SLEEPER, instances: "2" as never }), TypeError, ['got "2"'])
  })
})
