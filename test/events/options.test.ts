// Caller mistakes cost nothing: bad options and arguments are refused (TypeError/RangeError) before anything
// native happens, lone surrogates are refused where two strings could otherwise meet as one, and stats are
// never a housekeeping tick stale.
import { afterEach, describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Topic, type SubscribeOptions } from "../../src/events/index.ts"
import { cachedNames } from "../../src/events/codec.ts"
import { TimeoutError } from "../../src/core/index.ts"
import { fdCensus, settledCensus } from "../support/fds.ts"
import { allStopped, outcome, spawn, stopAll, until } from "../support/helpers.ts"

const MEMBER = join(import.meta.dir, "procs", "member.ts")
let seq = 0
const fresh = () => `o-${process.pid}-${seq++}`
const cleanup: { close(): void }[] = []
afterEach(async () => {
  await stopAll()
  for (const c of cleanup.splice(0).reverse()) c.close()
})
async function openTopic() {
  const t = await Topic.open(fresh(), { capacity: 1 << 16 })
  cleanup.push(t)
  return t
}

const BAD_SUBSCRIBE: [string, unknown][] = [
  ["an unknown idle strategy", { idle: "fast" }],
  ["an idle object with NaN", { idle: { spinMicros: Number.NaN, parkAfterMs: 1 } }],
  ["an idle object with a negative park", { idle: { spinMicros: 1, parkAfterMs: -1 } }],
  [
    "an idle object spinning past one turn (2^32 µs: it froze the event loop for 71 minutes)",
    { idle: { spinMicros: 2 ** 32, parkAfterMs: 1 } },
  ],
  ["a queue of 0", { queue: 0 }],
  ["a NaN queue", { queue: Number.NaN }],
  ["a huge queue", { queue: 1e12 }],
  ["a string queue", { queue: "5" }],
  ["a negative from", { from: -1 }],
  ["a fractional from", { from: 1.5 }],
  ["a NaN from", { from: Number.NaN }],
  ["a from word it does not know", { from: "later" }],
  ["a misspelt option", { qeueu: 5 }],
  ["null options", null],
]

describe("subscribe options", () => {
  test.each(BAD_SUBSCRIBE)("%s is a TypeError or RangeError", async (_what, opts) => {
    const t = await openTopic()
    let err: unknown
    try {
      t.subscribe({}, opts as SubscribeOptions)
    } catch (e) {
      err = e
    }
    expect(err instanceof TypeError || err instanceof RangeError).toBe(true)
    expect(t.stats().subscribers.length).toBe(0)
  })

  test("100 subscribes with bad options leave no subscriber entry and no fd: the topic still takes 64 subscribers", async () => {
    const t = await openTopic()
    const before = await settledCensus()
    for (let i = 0; i < 100; i++)
      expect(() => t.subscribe({}, BAD_SUBSCRIBE[i % BAD_SUBSCRIBE.length]![1] as SubscribeOptions)).toThrow()
    expect(t.stats().subscribers.length).toBe(0)
    expect(fdCensus().total).toBeLessThanOrEqual(before.total)
    const subs = Array.from({ length: 64 }, () => t.subscribe({ type: "x" }))
    t.publish({ type: "x", data: "ok" })
    expect((await subs[63]!.receive(1000))?.text()).toBe("ok")
    for (const s of subs) s.close()
  })

  test.each([
    ["a bad filter type", { type: 5 }],
    ["a filter routing that is a string", { routing: "scroll=A" }],
    // these were taken as no keys (a Map: a filter for one tenant received every tenant's events) or as "0", "1"…
    ["a filter routing that is a Map", { routing: new Map([["tenant", "A"]]) }],
    ["a filter routing that is an array", { routing: ["A"] }],
    ["a filter routing that is a class instance", { routing: new URLSearchParams("tenant=A") }],
    ["a filter routing inheriting its keys", { routing: Object.create({ tenant: "A" }) }],
  ])("%s is a TypeError", async (_what, filter) => {
    const t = await openTopic()
    expect(() => t.subscribe(filter as never)).toThrow(TypeError)
    expect(t.stats().subscribers.length).toBe(0)
  })

  test("a filter routing that is a Map says so in its TypeError", async () => {
    const t = await openTopic()
    expect(() => t.subscribe({ routing: new Map([["tenant", "A"]]) as never })).toThrow(/plain object.*got a Map/)
  })
})

describe("publish routing", () => {
  test.each([
    ["a Map", new Map([["tenant", "B"]])],
    ["an array", ["B"]],
    [
      "a class instance",
      new (class Tags {
        tenant = "B"
      })(),
    ],
    ["an object inheriting its keys", Object.create({ tenant: "B" })],
  ])("%s is a TypeError and publishes nothing", async (_what, routing) => {
    const t = await openTopic()
    const all = t.subscribe()
    expect(() => t.publish({ type: "x", routing: routing as never })).toThrow(TypeError)
    expect(all.poll().count).toBe(0)
  })

  test("an object without a prototype is plain: it filters and routes by its own keys", async () => {
    const t = await openTopic()
    const a = t.subscribe({ routing: Object.assign(Object.create(null), { tenant: "A" }) })
    t.publish({ type: "x", routing: { tenant: "B" } })
    t.publish({ type: "x", routing: Object.assign(Object.create(null), { tenant: "A" }) })
    const got = [...a.poll()].map((e) => e.routing)
    expect(got).toEqual([{ tenant: "A" }])
  })
})

describe("reading arguments", () => {
  test.each([
    ["receive(-1)", (s: Sub) => s.receive(-1), RangeError],
    ["receive(NaN)", (s: Sub) => s.receive(Number.NaN), RangeError],
    ["receive('5')", (s: Sub) => s.receive("5" as never), TypeError],
    ["ready(-5)", (s: Sub) => s.ready(-5), RangeError],
    ["ready(NaN)", (s: Sub) => s.ready(Number.NaN), RangeError],
    ["receive({ timeoutMs: -1 })", (s: Sub) => s.receive({ timeoutMs: -1 }), RangeError],
    ["receive({ timeoutMs: '5' })", (s: Sub) => s.receive({ timeoutMs: "5" as never }), TypeError],
    ["receive({ timeout: 5 })", (s: Sub) => s.receive({ timeout: 5 } as never), TypeError],
    ["receive(null)", (s: Sub) => s.receive(null as never), TypeError],
    ["ready({ timeoutMs: NaN })", (s: Sub) => s.ready({ timeoutMs: Number.NaN }), RangeError],
  ] as const)("%s rejects", async (_what, call, kind) => {
    const t = await openTopic()
    const s = t.subscribe()
    await expect(call(s)).rejects.toBeInstanceOf(kind)
    expect(t.stats().subscribers.length).toBe(1) // the subscription itself is untouched
    t.publish({ type: "still" })
    expect((await s.receive(1000))?.type).toBe("still")
  })

  test("receive and ready take { timeoutMs } like every other call, and a number alone still works", async () => {
    const t = await openTopic()
    const s = t.subscribe()
    t.publish({ type: "first" })
    expect(await s.ready({ timeoutMs: 1000 })).toBe(true)
    expect((await s.receive({ timeoutMs: 1000 }))?.type).toBe("first")
    expect(await s.receive({ timeoutMs: 20 })).toBeUndefined()
    expect(await s.ready({ timeoutMs: 20 })).toBe(false)
    expect(await s.receive(20)).toBeUndefined()
    t.publish({ type: "second" })
    expect((await s.receive({}))?.type).toBe("second") // no timeoutMs: no limit
    t.publish({ type: "third" })
    expect((await s.receive(1000))?.type).toBe("third")
  })

  test("a misspelt receive option is a TypeError that names timeoutMs", async () => {
    const t = await openTopic()
    const e = await t
      .subscribe()
      .receive({ timeout: 5 } as never)
      .catch((e: unknown) => e)
    expect(e).toBeInstanceOf(TypeError)
    expect((e as Error).message).toContain('did you mean "timeoutMs"')
    const n = await t
      .subscribe()
      .receive("5" as never)
      .catch((e: unknown) => e)
    expect((n as Error).message).toBe("receive takes { timeoutMs } (milliseconds, or a number alone), got string")
  })

  test.each([
    ["poll(0)", (s: Sub) => s.poll(0), RangeError],
    ["poll(-1)", (s: Sub) => s.poll(-1), RangeError],
    ["poll(NaN)", (s: Sub) => s.poll(Number.NaN), RangeError],
    ["poll(2.5)", (s: Sub) => s.poll(2.5), RangeError],
    ["poll('9')", (s: Sub) => s.poll("9" as never), TypeError],
  ] as const)("%s throws", async (_what, call, kind) => {
    const t = await openTopic()
    const s = t.subscribe()
    expect(() => call(s)).toThrow(kind)
  })

  test("poll(2 ** 32) is clamped to the queue, not wrapped to 0 by the native call", async () => {
    const t = await openTopic()
    const s = t.subscribe({}, { queue: 4 })
    for (let i = 0; i < 3; i++) t.publish({ type: "e" })
    expect(s.poll(2 ** 32).count).toBe(3)
  })

  test("a receive timeout past 2^31-1 ms waits instead of firing at once", async () => {
    const t = await openTopic()
    const s = t.subscribe({}, { idle: "park" })
    const got = outcome(s.receive(2 ** 31 + 1000), 200)
    expect((await got).state).toBe("hung")
    s.close()
  })
})

type Sub = ReturnType<Topic["subscribe"]>

describe("Topic.open options", () => {
  test.each([
    ["a negative timeoutMs", { timeoutMs: -1 }, RangeError],
    ["a NaN timeoutMs", { timeoutMs: Number.NaN }, RangeError],
    ["a string timeoutMs", { timeoutMs: "5" }, TypeError],
    ["an onWarning that is not a function", { onWarning: "log" }, TypeError],
    ["a misspelt option", { capacty: 1 << 16 }, TypeError],
  ] as const)("%s rejects before anything opens", async (_what, opts, kind) => {
    const before = await settledCensus()
    await expect(Topic.open(fresh(), opts as never)).rejects.toBeInstanceOf(kind)
    expect(fdCensus().total).toBeLessThanOrEqual(before.total)
  })

  test("the join deadline is monotonic: a wall clock set back an hour does not stretch it", async () => {
    const name = fresh()
    const keeper = spawn([process.execPath, MEMBER, "hold", name, String(1 << 16)])
    await keeper.waitLine(/"ready":true/, 20_000)
    keeper.proc.kill("SIGSTOP") // it never answers the newcomer: its accept thread is stopped too, once all are
    await until(() => allStopped(keeper.pid), "every thread of the keeper stopped")
    const realNow = Date.now
    let calls = 0
    Date.now = () => realNow() - (calls++ > 0 ? 3_600_000 : 0)
    try {
      const r = await outcome(Topic.open(name, { timeoutMs: 200 }), 5_000)
      expect(r.state).toBe("rejected")
      if (r.state === "rejected") expect(r.error).toBeInstanceOf(TimeoutError)
    } finally {
      Date.now = realNow
      keeper.proc.kill("SIGCONT")
    }
  })
})

describe("refused event types", () => {
  test("publishes of over-long types are TypeErrors that leave nothing in the type cache", async () => {
    const t = await openTopic()
    const all = t.subscribe()
    const before = cachedNames()
    for (let i = 0; i < 100; i++) expect(() => t.publish({ type: `${i}${"a".repeat(100_000)}` })).toThrow(TypeError) // 100 KB each, kept before
    expect(() => t.publish({ type: `a${"é".repeat(200)}` })).toThrow(TypeError) // 201 units, 401 bytes
    expect(cachedNames()).toBe(before)
    t.publish({ type: `fresh-${fresh()}` }) // one that is taken is cached
    expect(cachedNames()).toBe(before + 1)
    expect(all.poll().count).toBe(1)
  })
})

describe("lone surrogates", () => {
  test.each([
    ["an event type", (t: Topic) => t.publish({ type: "a\ud800" })],
    ["a routing key", (t: Topic) => t.publish({ type: "a", routing: { ["k\udc00"]: "v" } })],
    ["a routing value", (t: Topic) => t.publish({ type: "a", routing: { k: "v\ud800" } })],
    ["a long routing value", (t: Topic) => t.publish({ type: "a", routing: { k: "v".repeat(100) + "\ud800" } })],
    ["a filter type", (t: Topic) => t.subscribe({ type: "a\ud800*" })],
    ["a filter routing value", (t: Topic) => t.subscribe({ routing: { k: "\udc00" } })],
    ["a rule's fill key", (t: Topic) => t.bind({ type: "r", keys: ["a", "b"], fill: "c\ud800" })],
  ] as const)("in %s are a TypeError", async (_what, call) => {
    const t = await openTopic()
    const all = t.subscribe()
    expect(() => call(t)).toThrow(TypeError)
    expect(all.poll().count).toBe(0)
    expect(t.stats().subscribers.length).toBe(1)
  })

  test("two labels differing only in a lone surrogate never meet: both are refused", async () => {
    const t = await openTopic()
    expect(() => t.subscribe({ routing: { session: "s\ud800" } })).toThrow(TypeError)
    expect(() => t.publish({ type: "e", routing: { session: "s\udbff" } })).toThrow(TypeError)
    const ok = t.subscribe({ routing: { session: "s\u{1f600}" } }) // a whole pair is fine
    t.publish({ type: "e", routing: { session: "s\u{1f600}" } })
    expect((await ok.receive(1000))?.routing).toEqual({ session: "s\u{1f600}" })
  })
})

describe("stale views", () => {
  // In a child process: a read of freed memory crashes the process that does it.
  const stale = async (mode: string) => {
    const child = spawn([process.execPath, join(import.meta.dir, "procs", "stale.ts"), mode])
    const code = await child.exited
    expect({ code, stderr: child.stderr.slice(0, 300) }).toEqual({ code: 0, stderr: "" })
    return JSON.parse(child.lines[0]!) as { event: string; batch: string[]; subscribers: number }
  }

  test("a batch read after its subscription closed reads empty instead of freed memory; a received event keeps its bytes", async () => {
    expect(await stale("closed")).toEqual({ event: "hello", batch: [], subscribers: 0 })
  })

  test("a batch kept after its subscription was dropped keeps the subscription alive and reads as received", async () => {
    expect(await stale("dropped")).toEqual({ event: "hello", batch: ["again"], subscribers: 1 })
  })
})

describe("stats", () => {
  test("the first stats() after a subscriber process is killed no longer lists it", async () => {
    const t = await openTopic()
    const member = spawn([process.execPath, MEMBER, "sub", t.name, "{}", "16"])
    await member.waitLine(/"ready":true/, 20_000)
    expect(t.stats().subscribers.some((s) => s.pid === member.pid)).toBe(true)
    member.proc.kill("SIGKILL")
    await member.proc.exited
    expect(t.stats().subscribers.some((s) => s.pid === member.pid)).toBe(false)
  })

  test("a subscriber process that died but is not yet reaped (a zombie) is not listed by the first stats() after", async () => {
    const t = await openTopic()
    // Its parent execs sleep, which never waits for it: once killed, it stays a zombie (kill(pid, 0) still works).
    const parent = spawn(["sh", "-c", `"$0" "$1" sub ${t.name} '{}' 16 & exec sleep 60`, process.execPath, MEMBER])
    const pid = (JSON.parse((await parent.waitLine(/^.*"ready":true.*$/, 20_000))[0]) as { pid: number }).pid
    expect(t.stats().subscribers.some((s) => s.pid === pid)).toBe(true)
    process.kill(pid, "SIGKILL")
    await until(
      () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z"),
      "the member is a zombie",
    )
    expect(t.stats().subscribers.some((s) => s.pid === pid)).toBe(false)
  })
})
