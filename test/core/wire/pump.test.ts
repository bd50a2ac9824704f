// core/wire/pump.ts's Pump over the Parking interface: the duty cycle a request/response Channel and a topic
// subscription share. Driven through a made-up Parking, so each step (poll, rest, park, ring) is seen exactly.
import { beforeAll, expect, test } from "bun:test"
import { IO_ASKS_AFTER_SEEN, type Parking, Pump } from "../../../src/core/wire/pump.ts"
import { Calm } from "../../support/core/calm.ts"
import { threadContention } from "../../../src/core/wire/idle-signals.ts"
import { loadNative, native } from "../../../src/native/ffi.ts"
import { until } from "../../support/helpers.ts"

beforeAll(loadNative) // the pump's sched_yield

/** A Parking that records what the pump did and lets the test ring its doorbell; the first `arrivals` parks
 * find something arrived meanwhile. */
function fakeParking(arrivals = 0) {
  const log: string[] = []
  let onRing: ((count: number) => void) | undefined
  const parking: Parking = {
    isOpen: true,
    park: () => (log.push("park"), arrivals-- > 0 ? 1 : 0),
    unpark: () => void log.push("unpark"),
    listenDoorbell: (f) => void (onRing = f),
  }
  return { parking, log, ring: (n = 1) => onRing!(n) }
}

const turn = () => new Promise<void>((r) => setImmediate(r))

test("a resting pump polls nothing until resume(); with nothing to take it parks, and a ring runs it again", async () => {
  const { parking, log, ring } = fakeParking()
  let wanted = false
  let polls = 0
  let items = 0
  const pump = new Pump(parking, "park", {
    collect: () => (polls++, items > 0 ? (items--, 1) : 0),
    wanted: () => wanted,
    rest: true,
  })
  await turn()
  expect(polls).toBe(0) // nobody waits: it does not even start
  expect(log).toEqual([])
  wanted = true
  pump.resume()
  await turn()
  expect(polls).toBe(1)
  expect(log).toEqual(["park"])
  expect(pump.isParked).toBe(true)
  pump.resume() // a parked pump stays parked: the doorbell will ring
  await turn()
  expect(polls).toBe(1)
  items = 1
  ring()
  await turn()
  await turn()
  expect(polls).toBeGreaterThanOrEqual(2)
  expect(items).toBe(0)
  pump.stop()
})

test("a pump nobody wants anything from rests instead of parking when it may rest, and parks otherwise", async () => {
  for (const rest of [true, false]) {
    const { parking, log } = fakeParking()
    const pump = new Pump(parking, "adaptive", { collect: () => 0, wanted: () => false, rest })
    pump.kick()
    await turn()
    expect(log).toEqual(rest ? [] : ["park"])
    expect(pump.isParked).toBe(!rest)
    pump.stop()
  }
})

test("rouse() runs a parked pump as if rung, withdrawing its announcement first; it does nothing to a running one", async () => {
  const { parking, log } = fakeParking()
  let polls = 0
  const pump = new Pump(parking, "park", { collect: () => (polls++, 0), wanted: () => true })
  pump.kick()
  await turn()
  expect(log).toEqual(["park"])
  pump.rouse()
  expect(log).toEqual(["park", "unpark"])
  await turn()
  expect(polls).toBe(2)
  expect(log).toEqual(["park", "unpark", "park"]) // nothing came: parked again
  pump.stop()
  pump.rouse()
  expect(log.length).toBe(3)
})

test("something that arrives while the pump announces sleep is polled at once, not slept on", async () => {
  const { parking, log } = fakeParking(2)
  let polls = 0
  const pump = new Pump(parking, "park", { collect: () => (polls++, 0), wanted: () => true })
  pump.kick()
  for (let i = 0; i < 5; i++) await turn()
  expect(polls).toBe(3) // the first poll, then one after each park that found something
  expect(log).toEqual(["park", "park", "park"])
  expect(pump.isParked).toBe(true)
  pump.stop()
})

test("rings beyond the parks are a flood only where onRingFlood is given; without it they just run the pump", async () => {
  const floods: number[] = []
  const a = fakeParking()
  const policed = new Pump(a.parking, "park", {
    collect: () => 0,
    wanted: () => true,
    onRingFlood: (rings) => floods.push(rings),
  })
  a.ring(1000)
  expect(floods).toEqual([1000])
  const b = fakeParking()
  let polls = 0
  const free = new Pump(b.parking, "park", { collect: () => (polls++, 0), wanted: () => true })
  b.ring(1000)
  await turn()
  expect(polls).toBe(1)
  policed.stop()
  free.stop()
})

test("rest may be a function: a hub link with no slot out rests (no park, so the next kick needs no unpark)", async () => {
  const { parking, log } = fakeParking()
  let out = 0
  const pump = new Pump(parking, "adaptive", { collect: () => 0, wanted: () => false, rest: () => out === 0 })
  pump.kick()
  await turn()
  expect(log).toEqual([]) // rested
  out = 1 // a given-up slot is out: a late answer must be able to ring
  pump.kick()
  await turn()
  expect(log).toEqual(["park"])
  pump.stop()
})

test("a new connection's adaptive pump polls through startupPollNs from its first work before it parks for want of work; park mode parks at once", async () => {
  const long = fakeParking()
  let polls = 0
  const starting = new Pump(
    long.parking,
    "adaptive",
    {
      collect: () => (polls++ === 0 ? 1 : 0), // one request, then nothing
      wanted: () => true,
      startupPollNs: 60_000_000_000, // far longer than this test
    },
    new Calm(),
  )
  starting.kick()
  const since = performance.now()
  while (performance.now() - since < 10) await turn() // well past parkAfterMs (1 ms)
  expect(polls).toBeGreaterThan(2)
  expect(long.log).toEqual([]) // still polling
  starting.stop()

  const none = fakeParking()
  const plain = new Pump(none.parking, "adaptive", { collect: () => 0, wanted: () => true })
  plain.kick()
  await until(async () => (await turn(), none.log.includes("park")), "an adaptive pump with no startup poll parks")
  plain.stop()

  const parked = fakeParking()
  const park = new Pump(parked.parking, "park", { collect: () => 0, wanted: () => true, startupPollNs: 60e9 })
  park.kick()
  await turn()
  expect(parked.log).toEqual(["park"])
  park.stop()
})

test("a new connection's pump that has found no work yet parks after parkAfterMs, startup poll or not (an idle bus's fresh worker)", async () => {
  // It polled for the whole startupPollNs from its connection: on 2 CPUs an idle second bus's worker then held one
  // for 250 ms, and the first bus's hub and worker took turns on the other (6 µs round trips against 1.4)
  const idle = fakeParking()
  let polls = 0
  const pump = new Pump(
    idle.parking,
    "adaptive",
    { collect: () => (polls++, 0), wanted: () => true, startupPollNs: 60_000_000_000 },
    new Calm(),
  )
  pump.kick()
  await until(async () => (await turn(), idle.log.includes("park")), "a pump that found no work parks")
  expect(pump.isParked).toBe(true)
  const parkedAfter = polls
  for (let i = 0; i < 5; i++) await turn()
  expect(polls).toBe(parkedAfter) // parked: no more polling until rung
  pump.stop()
})

test("a crowded bus (more processes than CPUs) makes the default pump park after one empty poll, startup poll or not; an explicit strategy keeps its own", async () => {
  let crowded = true
  const seen = fakeParking()
  let polls = 0
  const pump = new Pump(seen.parking, undefined, {
    collect: () => (polls++, 0),
    wanted: () => true,
    startupPollNs: 60_000_000_000, // would poll for a minute if the bus were not crowded
    crowded: () => crowded,
  })
  pump.kick()
  await turn()
  expect(polls).toBe(1) // no spin: one poll, then parked
  expect(seen.log).toEqual(["park"])
  pump.kick() // parked while crowded: the doorbell will ring, as in park mode
  await turn()
  expect(seen.log).toEqual(["park"])
  crowded = false // the bus thinned out: a ring runs it and it polls again
  seen.ring()
  await turn()
  expect(polls).toBeGreaterThan(1)
  pump.stop()

  const spin = fakeParking()
  let spins = 0
  const spinning = new Pump(spin.parking, "spin", {
    collect: () => (spins++, 0),
    wanted: () => true,
    crowded: () => true,
  })
  spinning.kick()
  await turn()
  expect(spins).toBeGreaterThan(1) // "spin" was asked for: it spins
  expect(spin.log).toEqual([])
  spinning.stop()
})

test("the pumps of a thread share its Contention: a spell one of them saw makes another park after its first fruitless run", async () => {
  const contention = threadContention()
  const a = new Pump(fakeParking().parking, "adaptive", { collect: () => 0, wanted: () => true })
  const b = fakeParking()
  let polls = 0
  const pump = new Pump(b.parking, "adaptive", {
    collect: () => (polls++, 0),
    wanted: () => true,
    startupPollNs: 60_000_000_000, // would poll for a minute on a calm machine
  })
  try {
    // three slow sched_yields in a row, as a's spin would have met them: the machine is oversubscribed
    for (let i = 0; i < 3; i++) contention.yielded(Bun.nanoseconds(), 60_000)
    expect(contention.until).toBeGreaterThan(Bun.nanoseconds())
    pump.kick()
    await turn()
    expect(polls).toBeGreaterThan(0)
    expect(b.log).toEqual(["park"]) // after its first run's spin, not after a minute of polling
  } finally {
    contention.until = 0 // the spell would hold up the pumps of the tests after this one
    a.stop()
    pump.stop()
  }
})

/** A collect that finds nothing and takes about a microsecond, so a spin reaches its first yield point in 8 polls. */
const slowEmptyPoll = (count: () => void) => () => {
  count()
  for (const t = Bun.nanoseconds(); Bun.nanoseconds() - t < 1000; );
  return 0
}

test("a spinning pump whose event loop has I/O waiting leaves the turn to it at its first yield point, unless a request of this turn may still be answered in it; with no I/O waiting it spins on", async () => {
  const { parking } = fakeParking()
  let read = 0
  const { promise: accepted, resolve: accept } = Promise.withResolvers<void>()
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data: () => void read++, open: () => accept() },
  })
  const { promise: opened, resolve: open } = Promise.withResolvers<void>()
  const client = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: { data() {}, open: () => open() },
  })
  const pumps: Pump[] = []
  const SPIN_NS = 1_000_000
  const pumpWith = (inTurn: boolean) => {
    const seen = { polls: 0 }
    // a 1 ms spin: each poll takes ~1 µs, so the first yield point (5 µs) comes after the 8 polls a clock read waits for
    const pump = new Pump(
      parking,
      { spinMicros: SPIN_NS / 1000, parkAfterMs: 1000 },
      {
        collect: slowEmptyPoll(() => seen.polls++),
        wanted: () => true,
        startupPollNs: 60_000_000_000, // polls, never parks, for the whole test
        answerInTurnPays: () => inTurn,
        yieldsToIo: true,
      },
      new Calm(),
    )
    pumps.push(pump)
    return { pump, seen }
  }
  /** polls in the pump's first run, kicked with a byte waiting for the server's socket, and how long that run took */
  const firstRun = async (inTurn: boolean) => {
    const { pump, seen } = pumpWith(inTurn)
    const before = read
    client.write("x") // loopback: the server's socket is readable once write returns
    client.flush()
    const t = Bun.nanoseconds()
    pump.kick()
    await null // the pump's run was queued first: it has run
    const run = { polls: seen.polls, ns: Bun.nanoseconds() - t }
    pump.stop()
    await until(() => read > before, "the server read the byte")
    return run
  }
  try {
    await Promise.all([opened, accepted])
    await turn()
    // 1 + 8 polls: the first yield point asked the loop, which had the byte to read (the whole spin: ~500)
    expect((await firstRun(false)).polls).toBeLessThanOrEqual(16)
    // a big answer may land in its caller's turn: worth the whole spin all the same. The run lasts the spin, however
    // few polls a preempted one managed (CI once saw 9: the clock ran past the spin's end while another process ran)
    expect((await firstRun(true)).ns).toBeGreaterThanOrEqual(SPIN_NS)
    const { pump } = pumpWith(false) // nothing waiting: it spins on
    const t = Bun.nanoseconds()
    pump.kick()
    await null
    expect(Bun.nanoseconds() - t).toBeGreaterThanOrEqual(SPIN_NS)
  } finally {
    for (const pump of pumps) pump.stop()
    client.end()
    server.stop(true)
  }
})

test("a pump that found I/O waiting asks before its next spins, until its asks in a row found none: a stray wake-up of the loop does not cost every later round trip a poll(2)", async () => {
  const { parking } = fakeParking()
  let read = Promise.withResolvers<void>() // the server read the byte written last
  const { promise: accepted, resolve: accept } = Promise.withResolvers<void>()
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data: () => read.resolve(), open: () => accept() },
  })
  const { promise: opened, resolve: open } = Promise.withResolvers<void>()
  const client = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: { data() {}, open: () => open() },
  })
  // the pump's asks, counted on their way to the library
  const lib: { sb_any_readable: typeof native.sb_any_readable } = native
  const ask = lib.sb_any_readable
  const seen = { polls: 0, asks: 0, found: 0 }
  lib.sb_any_readable = (fds, n) => {
    const r = ask(fds, n)
    seen.asks++
    if (r === 1) seen.found++
    return r
  }
  let wanted = false // only while run() looks: between runs the pump parks
  // a 1 ms spin of ~1 µs polls: the first yield point (5 µs) comes after the 8 polls a clock read waits for
  const pump = new Pump(
    parking,
    { spinMicros: 1000, parkAfterMs: 1000 },
    {
      collect: slowEmptyPoll(() => seen.polls++),
      wanted: () => wanted,
      startupPollNs: 60_000_000_000, // polls, never parks, for the whole test
      answerInTurnPays: () => false,
      yieldsToIo: true,
    },
    new Calm(),
  )
  /** What one run did, kicked with a byte waiting for the server's socket or with nothing waiting. */
  const run = async (byteWaiting: boolean) => {
    const before = { ...seen }
    read = Promise.withResolvers<void>()
    if (byteWaiting) {
      client.write("x") // loopback: the server's socket is readable once write returns
      client.flush()
    }
    wanted = true
    pump.kick()
    await null // the pump's run was queued first: it has run
    wanted = false
    const did = { polls: seen.polls - before.polls, asks: seen.asks - before.asks, found: seen.found - before.found }
    if (byteWaiting) await read.promise
    await turn() // a run the pump queued for the next turn finds it unwanted and parks
    return did
  }
  try {
    await Promise.all([opened, accepted])
    await turn()
    // 1 + the 8 polls before its first yield point, which asked and found the byte
    expect(await run(true)).toMatchObject({ asks: 1, found: 1 })
    expect(await run(true)).toEqual({ polls: 1, asks: 1, found: 1 }) // I/O was seen: it asks before it spins
    // nothing waiting: its spins ask before they start and at their yield points, and find nothing
    let dry = 0
    for (let runs = 0; dry < IO_ASKS_AFTER_SEEN && runs < 1000; runs++) dry += (await run(false)).asks
    expect(dry).toBeGreaterThanOrEqual(IO_ASKS_AFTER_SEEN)
    // so the next spin does not ask first: it asks where it would yield (before: for 10 ms after it last saw I/O,
    // every spin began with a poll(2))
    const after = await run(true)
    expect(after.polls).toBeGreaterThanOrEqual(9)
    expect(after).toMatchObject({ asks: 1, found: 1 })
  } finally {
    lib.sb_any_readable = ask
    pump.stop()
    client.end()
    server.stop(true)
  }
})

test("a pump whose side is making an answer in microtasks lets them run instead of spinning; past its spin budget it spins again", async () => {
  const { parking } = fakeParking()
  let polls = 0
  let making = false
  const most: number[] = [] // per answer, the most polls between two steps of its making
  let answered = 0
  /** A request, answered through a chain of microtasks (a handler's promise, a Response body read). */
  const request = async () => {
    making = true
    let worst = 0
    for (let i = 0, seen = polls; i < 10; i++, seen = polls) {
      await null
      worst = Math.max(worst, polls - seen)
    }
    most.push(worst)
    making = false
    answered++
  }
  let requests = 0
  const pump = new Pump(
    parking,
    { spinMicros: 1000, parkAfterMs: 1000 }, // a budget no step of a cold chain on a loaded machine outlasts
    {
      collect: () => {
        polls++
        if (requests === 0) return 0
        requests--
        void request()
        return 1
      },
      wanted: () => true,
      answering: () => making,
    },
    new Calm(),
  )
  pump.kick()
  for (let i = 1; i <= 20; i++) {
    requests = 1
    await until(() => answered === i, "the answer is made")
  }
  // each step waited for one poll at most; a spin polls 8 times before it first looks at the clock. (A process
  // descheduled past the budget mid-answer, as on a loaded CI machine, spins through the rest of that answer: a few
  // may; spinning over every answer, as before, polled thousands of times a step.)
  expect(most.filter((n) => n > 2).length, `polls between steps, per answer: ${most}`).toBeLessThanOrEqual(5)

  // an answer that waits for I/O: the pump queues behind it for one spin budget only, then turns come again
  making = true
  const before = polls
  // the event loop is not held: its turns come (held, this would time out) ...
  for (let turns = 0; turns < 10; turns++) await turn()
  expect(polls - before).toBeGreaterThan(100) // ... and between them the pump polled on, spinning
  pump.stop()

  // a pump that would not spin (a crowded bus's) parks as before: parked, it holds no microtask up
  const crowd = fakeParking()
  let crowdPolls = 0
  const crowded = new Pump(crowd.parking, undefined, {
    collect: () => (crowdPolls++, 0),
    wanted: () => true,
    crowded: () => true,
    answering: () => true,
  })
  crowded.kick()
  await turn()
  expect(crowd.log).toEqual(["park"])
  expect(crowdPolls).toBe(1)
  crowded.stop()
})
