// The TopicRemote conformance suite (src/events/bridge.ts): the same tests against every transport of
// transports.ts, one topic on two hosts. Host A is this test process. Host B is processes of
// test/support/conformance/conformance-topic.ts on the portable backend with a socket directory of their own
// (SLOTBUS_PLATFORM=posix, SLOTBUS_SOCKET_DIR): their topic is a ring of its own, with its own bridge, that
// meets host A's only through the transport, as on another machine, with no root or network namespace needed
// (test/events/hosts.ci.test.ts runs NATS between network namespaces). Events cross both ways, once, in order;
// filters are carried across; events lost while host B had no bridge are counted, exactly. Host B's processes run
// under Bun, and again under Node 26 (issue 67; that row skips with the install line without it), and one test has
// host B's bridge under one runtime and its successor under the other.
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { Topic, type TopicBridgeStats } from "../../src/events/index.ts"
import { busName, until, type Child } from "../support/helpers.ts"
import { PEER_RUNTIMES, type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"
import { anotherHost, serverPerFile, TRANSPORTS, type Transport } from "./transports.ts"

afterAll(removeNodeBuilds)

describe.each(TRANSPORTS.flatMap((t) => PEER_RUNTIMES.map((r) => [t.name, r, t] as [string, PeerRuntime, Transport])))(
  "a topic across two hosts over %s, host B's processes under %s",
  (name, runtime, t) => {
    const skip = t.skip() ?? peerSkip(runtime)
    if (skip) console.warn(`skipped: the TopicRemote conformance suite over ${name}, peers under ${runtime} (${skip})`)
    const it = test.skipIf(skip !== null)
    const server = serverPerFile({ skip: () => skip, start: t.start })
    let cleanup: (() => Promise<unknown>)[] = []
    afterEach(async () => {
      for (const f of cleanup.reverse()) await f()
      cleanup = []
    })

    async function onA(topic: string): Promise<Topic> {
      const a = await Topic.open(topic, { remote: t.remote(server.address) })
      cleanup.push(() => a[Symbol.asyncDispose]())
      return a
    }
    /** Host B: every process started here shares its rings, and no other host's. */
    function hostB() {
      const env = anotherHost(cleanup)
      return async (
        topic: string,
        role: "sub" | "bridge" | "lsub",
        filter?: string,
        under = runtime,
      ): Promise<Child> => {
        const args = role === "lsub" ? ["-", "-"] : [name, server.address]
        const c = await peerChild(under, "conformance/conformance-topic.ts", [topic, ...args, role, filter ?? ""], {
          env,
          stdin: "pipe",
        })
        cleanup.push(() => c.kill())
        await c.waitLine(/^ready \d+$/, 20_000)
        return c
      }
    }
    const evs = (c: Child) => c.lines.filter((l) => l.startsWith("ev ")).map((l) => l.slice(3))
    const stats = (c: Child): TopicBridgeStats | undefined => {
      const l = c.lines.findLast((x) => x.startsWith("stats "))
      return l ? (JSON.parse(l.slice(6)) as TopicBridgeStats) : undefined
    }
    const count = (c: Child) => {
      const [, r = "0", l = "0"] = c.lines.findLast((x) => x.startsWith("count "))?.split(" ") ?? []
      return { received: Number(r), lagged: Number(l) }
    }
    /** Publishes probe events on host A until host B's subscriber has one: B's interest reached A. Returns how many. */
    async function probeAtoB(a: Topic, b: Child): Promise<number> {
      let n = 0
      await until(
        () => (a.publish({ type: "job.probe", data: `probe-a-${n++}` }), evs(b).length > 0),
        "A reaches B",
        20_000,
        20,
      )
      return n
    }

    it("an event of each host reaches the other's subscriber once, and never comes back to the host it came from", async () => {
      const topic = busName("ct")
      const a = await onA(topic)
      const subA = a.subscribe({ type: "job.*" })
      const b = await hostB()(topic, "sub", "job.*")
      let ownA = await probeAtoB(a, b)
      let ownB = 0
      const gotA: string[] = []
      const readA = () => {
        for (const e of subA.poll()) gotA.push(e.text())
      }
      await until(
        () => (b.write(`pub job.probe probe-b-${ownB++}\n`), readA(), gotA.some((d) => d.startsWith("probe-b-"))),
        "B reaches A",
        20_000,
        20,
      )
      a.publish({ type: "job.x", data: "a1" })
      b.write("pub job.x b1\n")
      ownA++
      ownB++
      await until(() => evs(b).includes("a1") && evs(b).includes("b1"), "B has a1 and b1")
      await until(() => (readA(), gotA.includes("a1") && gotA.includes("b1")), "A has a1 and b1")
      // Now an echo of a1 or b1 would be in the other host's ring before these, and sent before them
      a.publish({ type: "job.x", data: "a-end" })
      b.write("pub job.x b-end\n")
      ownA++
      ownB++
      await until(() => evs(b).includes("a-end") && evs(b).includes("b-end"), "B has both ends")
      await until(() => (readA(), gotA.includes("a-end") && gotA.includes("b-end")), "A has both ends")
      await until(() => (stats(b)?.sent ?? 0) >= ownB, "B's bridge sent what B published")
      for (const got of [gotA, evs(b)])
        for (const d of ["a1", "b1", "a-end", "b-end"]) expect(got.filter((x) => x === d)).toEqual([d])
      // what a bridge sends is its own host's events, never those it took in from the other host
      expect(a.bridgeStats()!.sent).toBeLessThanOrEqual(ownA)
      expect(stats(b)!.sent).toBeLessThanOrEqual(ownB)
      expect(a.bridgeStats()).toMatchObject({ bridging: true, duplicates: 0, lost: 0, refused: 0 })
    }, 60_000)

    it("a subscriber's filter is carried across: host B takes in only the events its subscribers want", async () => {
      const topic = busName("ct")
      const a = await onA(topic)
      const b = await hostB()(topic, "sub", "job.*")
      await probeAtoB(a, b)
      for (let i = 0; i < 100; i++) {
        a.publish({ type: "job.n", data: `job-${i}` })
        a.publish({ type: "other.n", data: `other-${i}` }) // no subscriber on host B wants it
      }
      a.publish({ type: "job.end", data: "end" })
      await until(() => evs(b).includes("end"), "the last event reaches host B", 30_000)
      expect(evs(b).filter((d) => !d.startsWith("probe-"))).toEqual([
        ...Array.from({ length: 100 }, (_, i) => `job-${i}`),
        "end",
      ])
      // every event host B's bridge took into its ring, its one subscriber received: no other.n among them
      await until(() => (stats(b)?.received ?? 0) >= evs(b).length, "host B's stats count what arrived")
      expect(stats(b)!.received).toBe(evs(b).length)
      await until(() => count(b).received === evs(b).length, "host B's subscriber counted what it printed")
      expect(count(b).lagged).toBe(0)
    }, 60_000)

    it("events arrive in the order their host published them, both ways", async () => {
      const topic = busName("ct")
      const a = await onA(topic)
      const subA = a.subscribe({ type: "seq.b" }, { queue: 1 << 16 })
      const b = await hostB()(topic, "sub", "seq.a")
      // B's interest in seq.a reaches A
      await until(() => (a.publish({ type: "seq.a", data: "probe" }), evs(b).length > 0), "A reaches B", 20_000, 20)
      const N = 2000
      for (let i = 0; i < N; i++) {
        a.publish({ type: "seq.a", data: String(i) })
        if (i % 100 === 99) await Bun.sleep(1)
      }
      const fromA = () => evs(b).filter((d) => d !== "probe")
      await until(() => fromA().length >= N, `host B has ${N} events of host A`, 30_000)
      expect(fromA()).toEqual(Array.from({ length: N }, (_, i) => String(i)))
      // and from B: its interest is there once a probe arrives
      const gotA: string[] = []
      await until(
        () => {
          b.write("pub seq.b probe\n")
          for (const e of subA.poll()) gotA.push(e.text())
          return gotA.length > 0
        },
        "B reaches A",
        20_000,
        20,
      )
      b.write(`${Array.from({ length: N }, (_, i) => `pub seq.b ${i}\n`).join("")}`)
      const fromB = () => gotA.filter((d) => d !== "probe")
      await until(
        () => {
          for (const e of subA.poll()) gotA.push(e.text())
          return fromB().length >= N
        },
        `host A has ${N} events of host B`,
        30_000,
      )
      expect(fromB()).toEqual(Array.from({ length: N }, (_, i) => String(i)))
      expect(subA.lagged).toBe(0)
    }, 90_000)

    it("events lost while host B had no bridge (its bridge killed with kill -9) are counted in its subscriber's lagged, exactly, however many", async () => {
      const topic = busName("ct")
      const a = await onA(topic)
      const onB = hostB()
      const sub = await onB(topic, "lsub", "job.n") // subscribes only: outlives the bridges
      let bridge = await onB(topic, "bridge")
      let i = 0
      const got = () => evs(sub).map(Number)
      const publishUntil = async (cond: () => boolean, what: string) =>
        until(
          () => {
            a.publish({ type: "job.n", data: String(i++) })
            return cond()
          },
          what,
          30_000,
          1,
        )
      await publishUntil(() => got().length > 0, "host B receives an event")
      const before = i + 50
      await publishUntil(() => i >= before, "50 more are published")
      await until(() => got().includes(before - 1), "host B has them")
      await bridge.kill("SIGKILL")
      const LOST = 5000 // more than a sender's numbers may jump before its receiver's books start afresh (4,096)
      for (let n = 0; n < LOST; n++) {
        a.publish({ type: "job.n", data: String(i++) })
        if (n % 100 === 99) await Bun.sleep(1)
      }
      await until(() => a.bridgeStats()!.sent >= i, "host A's bridge sent them all")
      bridge = await onB(topic, "bridge")
      const after = i
      await publishUntil(() => got().some((n) => n >= after), "host B receives an event published after its new bridge")
      const last = i + 50
      await publishUntil(() => i >= last, "50 more are published")
      await until(() => got().includes(last - 1), "the last event reaches host B")
      const seen = got()
      await until(() => count(sub).received === seen.length, "host B's subscriber counted what it printed")
      // the bridge's stats line is printed every 50 ms: one from after it took the last event
      const viaNew = seen.filter((n) => n >= after).length
      await until(() => stats(bridge)!.received >= viaNew, "host B's new bridge counted what it took", 10_000)
      expect(new Set(seen).size).toBe(seen.length)
      expect(seen).toEqual(seen.toSorted((x, y) => x - y))
      // every event from the first host B received to the last: received or counted as lagged, exactly
      expect(count(sub).received + count(sub).lagged).toBe(seen.at(-1)! - seen[0]! + 1)
      expect(count(sub).lagged).toBeGreaterThanOrEqual(LOST)
      expect(stats(bridge)!.lost).toBe(count(sub).lagged)
    }, 90_000)

    it("host B's bridge narrowing its subjects (a subscriber of every type gone) loses no event on the way", async () => {
      const topic = busName("ct")
      const a = await onA(topic)
      const onB = hostB()
      const sub = await onB(topic, "lsub", "job.n")
      const bridge = await onB(topic, "bridge")
      let i = 0
      const publish = () => {
        for (let k = 0; k < 5; k++) a.publish({ type: "job.n", data: String(i++) })
      }
      const got = () => evs(sub).map(Number)
      const subjects = () => stats(bridge)?.subjects.map((s) => s.slice(s.lastIndexOf(`${topic}.`) + topic.length + 1))
      await until(() => (publish(), got().length > 0), "host B receives an event", 30_000, 1)
      // events 5 a millisecond all along, so each swap of `>` for `job.n` has some on the way
      for (let round = 0; round < 3; round++) {
        const all = await onB(topic, "lsub", "*")
        await until(
          () => (publish(), subjects()?.join() === ">"),
          "host B's bridge subscribes to every type",
          20_000,
          1,
        )
        await all.kill()
        await until(() => (publish(), subjects()?.join() === "job.n"), "host B's bridge narrows to job.n", 20_000, 1)
      }
      const last = i + 50
      await until(() => (publish(), i >= last), "50 more are published", 10_000, 1)
      await until(() => got().includes(i - 1), "the last event reaches host B", 30_000)
      const seen = got()
      const first = seen[0]!
      // the bridge's stats line is printed every 50 ms: one from after it took the last event
      await until(() => stats(bridge)!.received >= seen.length, "host B's bridge counted what it took", 10_000)
      expect(seen).toEqual(Array.from({ length: i - first }, (_, k) => first + k))
      expect(stats(bridge)).toMatchObject({ lost: 0, resyncs: 0 })
    }, 90_000)

    // one host, both runtimes: the per-host election (PROTOCOL §11.4) is one socket file whichever runtime stands
    const otherRuntime: PeerRuntime = runtime === "bun" ? "node" : "bun"
    test.skipIf(skip !== null || peerSkip(otherRuntime) !== null)(
      `host B's bridge killed with kill -9: host B's process under ${otherRuntime} takes the bridge over, and host A's events reach its subscriber`,
      async () => {
        const topic = busName("ct")
        const a = await onA(topic)
        const onB = hostB()
        const first = await onB(topic, "bridge")
        await until(() => stats(first)?.bridging === true, `the bridge under ${runtime}`, 20_000)
        const second = await onB(topic, "sub", "job.*", otherRuntime)
        await until(() => stats(second) !== undefined, "the second process's stats", 20_000)
        expect(stats(second)!.bridging).toBe(false) // it stands: the first holds the name
        await probeAtoB(a, second) // through the first's bridge
        await first.kill("SIGKILL")
        await until(() => stats(second)?.bridging === true, `the bridge under ${otherRuntime}`, 30_000)
        let n = 0
        await until(
          () => (
            a.publish({ type: "job.after", data: `after-${n++}` }), evs(second).some((e) => e.startsWith("after-"))
          ),
          "host A's events reach host B through the new bridge",
          30_000,
          20,
        )
      },
      90_000,
    )
  },
)
