// A topic member process for the cross-process tests. Prints one JSON line per milestone on stdout.
//   sub <topic> <filter json> <queue> [n]  subscribe; after n "ctl.end" events on <topic>-ctl, report counts
//   pub <topic> <count> <publisher index>  publish the stream of gen.ts, then "ctl.end" on <topic>-ctl
//   hold <topic> <capacity>                open (create) and stay
//   hostile <topic>                        scribble over the ring, then publish garbage-free events forever
//   squat <topic> <timeout ms>             open (create) the topic, say whether it created it or why not, exit
//   carry <topic>                          a hostile member: stores tail values that cross a 2^32 boundary
//                                          each time, j·2^32 + 16·(j mod 2^20) for j = 1, 2, …, as whole u64
//                                          stores, until killed (a reader of the tail in two halves tears there)
//   flood <topic> <ms>                     16 opens at a time, again and again for <ms>: says whether one took the
//                                          name (then exits at once) or how many were made and how each failed
//   rawconnect <@socket>                   connects to an abstract socket by hand: the status of the hello it gets
//   rawflood <@socket> <ms>                16 such connects at a time, each closed after its hello or 200 ms, for <ms>
//   rawbind <@socket>                      binds and listens on an abstract socket by hand, answers nothing, stays
//   midwrite <topic>                       a publisher stopped mid-copy for good: its fence and a 64-byte claim at the
//                                          tail left WRITING (§8.3 P3, P5), never committed; prints { claimed: pos }
//   parked <topic>                         subscribe (idle "park") and print each event ({ ev: text }); no top-level
//                                          await and no timer: only its subscription keeps the process alive
import { toArrayBuffer } from "bun:ffi"
import { NotFoundError, Topic } from "../../../src/events/index.ts"
import { topicNative } from "../../../src/native/ffi.ts"
import { EntryState, PubField, RecState, TopicConst, TopicLayout } from "../../../src/native/topic-layout.ts"
import { scrollOf, typeOf } from "./gen.ts"

const [mode, name, a, b, c] = process.argv.slice(2)

/** Joins the topic as it is (a test may have made it with any capacity), or creates it with 4 MiB. */
async function join(topic: string): Promise<Topic> {
  try {
    return await Topic.open(topic, { create: "never" })
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e
  }
  return Topic.open(topic, { capacity: 1 << 22 })
}
const say = (o: object) => process.stdout.write(JSON.stringify(o) + "\n")

if (mode === "hold") {
  const t = await Topic.open(name!, { capacity: Number(a ?? 1 << 20) })
  for (let i = 0; i < 5; i++) t.publish({ type: "held", data: String(i) })
  say({ ready: true, pid: process.pid, keeper: t.isKeeper })
  setInterval(() => {}, 1000)
} else if (mode === "sub") {
  const publishers = Number(c ?? 1)
  const t = await join(name!)
  const sub = t.subscribe(JSON.parse(a!), { queue: Number(b), idle: "adaptive" })
  const ctlTopic = await Topic.open(`${name}-ctl`, { capacity: 1 << 16 })
  const ctl = ctlTopic.subscribe({ type: "ctl.end" }, { queue: 64, idle: "park" })
  say({ ready: true, pid: process.pid })
  const last = new Map<number, number>()
  let outOfOrder = 0
  let ends = 0
  let got = 0
  const view = (u: Uint8Array) => new DataView(u.buffer, u.byteOffset, u.byteLength)
  const take = () => {
    const batch = sub.poll()
    batch.forEachRaw((_id, _type, data) => {
      if (data.length < 8) return // not from a "pub" member (the "hold" ones publish a few short events)
      const d = view(data)
      const pub = d.getUint32(0, true),
        seq = d.getUint32(4, true)
      if ((last.get(pub) ?? -1) >= seq) outOfOrder++
      last.set(pub, seq)
    })
    got += batch.count
    return batch.count
  }
  const checkEnd = () => {
    for (let n = ctl.poll().count; n > 0; n = ctl.poll().count) ends += n
  }
  for (;;) {
    checkEnd()
    if (ends >= publishers) break
    if (take() === 0) await Bun.sleep(0)
  }
  // drain what was published before the ends
  for (let idle = 0; idle < 3; ) (idle = take() === 0 ? idle + 1 : 0), await Bun.sleep(1)
  say({
    done: true,
    received: sub.received,
    lagged: sub.lagged,
    corrupt: sub.corrupt,
    estimates: sub.estimates,
    got,
    outOfOrder,
  })
  sub.close()
  t.close()
  setTimeout(() => process.exit(0), 100)
} else if (mode === "pub") {
  const t = await join(name!)
  const count = Number(a),
    index = Number(b)
  const data = new Uint8Array(64)
  const d = new DataView(data.buffer)
  d.setUint32(0, index, true)
  say({ ready: true, pid: process.pid })
  const slow = c === "slow"
  for (let seq = 0; seq < count; seq++) {
    d.setUint32(4, seq, true)
    t.publish({ type: typeOf(seq), routing: { scroll: scrollOf(seq) }, data })
    if (slow && seq % 100 === 99) await Bun.sleep(1)
  }
  const ctlTopic = await Topic.open(`${name}-ctl`, { capacity: 1 << 16 })
  ctlTopic.publish({ type: "ctl.end" })
  say({ published: count })
  t.close()
  setTimeout(() => process.exit(0), 100)
} else if (mode === "hostile") {
  const t = await join(name!)
  t.publish({ type: "hostile.hello" }) // maps the ring writable
  const ring = new Uint8Array(toArrayBuffer(topicNative.sb_topic_region(t.ptr)!, TopicLayout.OFF_DATA, t.capacity))
  say({ ready: true, pid: process.pid })
  let x = 12345
  const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0), x)
  setInterval(() => {
    // scribble: random bytes, and fake headers claiming to be records at their own positions
    for (let i = 0; i < 2000; i++) ring[rnd() % ring.length] = rnd() & 0xff
    const off = (rnd() % (ring.length / 16)) * 16
    new DataView(ring.buffer, ring.byteOffset).setUint32(off + 12, 2, true)
  }, 1)
} else if (mode === "squat") {
  try {
    const t = await Topic.open(name!, { capacity: 1 << 16, timeoutMs: Number(a) })
    say({ opened: true, created: t.isKeeper })
    await t.close()
  } catch (e) {
    say({ opened: false, error: (e as Error).name, message: (e as Error).message })
  }
  process.exit(0)
} else if (mode === "carry") {
  const t = await join(name!)
  const tail = new BigUint64Array(toArrayBuffer(topicNative.sb_topic_region(t.ptr)!, 0, TopicLayout.OFF_DATA))
  const at = TopicLayout.OFF_TAIL / 8
  say({ ready: true, pid: process.pid })
  for (let j = 1; ; j = j === 1 << 20 ? 1 : j + 1) tail[at] = (BigInt(j) << 32n) | BigInt(16 * (j & 0xfffff))
} else if (mode === "flood") {
  const end = Date.now() + Number(a)
  let n = 0
  const failed: Record<string, number> = {}
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (Date.now() < end) {
        n++
        try {
          const t = await Topic.open(name!, { capacity: 1 << 16, timeoutMs: 200 })
          say({ took: true, keeper: t.isKeeper })
          process.exit(0)
        } catch (e) {
          const why = (e as Error).name
          failed[why] = (failed[why] ?? 0) + 1
        }
      }
    }),
  )
  say({ took: false, n, failed })
  process.exit(0)
} else if (mode === "midwrite") {
  const t = await join(name!)
  t.publish({ type: "midwrite.hello" }) // its publisher entry, and the ring mapped writable
  const region = new DataView(toArrayBuffer(topicNative.sb_topic_region(t.ptr)!, 0, TopicLayout.OFF_DATA + t.capacity))
  const entries = Array.from(
    { length: TopicConst.MAX_PUBS },
    (_, i) => TopicLayout.OFF_PUBS + i * TopicLayout.PUB_BYTES,
  )
  const entry = entries.find(
    (e) =>
      region.getUint32(e + PubField.STATE, true) === EntryState.LIVE &&
      region.getUint32(e + PubField.PID, true) === process.pid,
  )!
  // the header word of §8.3 for a 64-byte record at the tail, WRITING; its fence is the same word (§8.2)
  const pos = Number(region.getBigUint64(TopicLayout.OFF_TAIL, true))
  const word = ((BigInt(pos >> 4) & ((1n << 40n) - 1n)) << 24n) | (BigInt(64 >> 4) << 4n) | BigInt(RecState.WRITING)
  region.setBigUint64(entry + PubField.FENCE, word, true) // P3
  region.setBigUint64(TopicLayout.OFF_DATA + (pos & (t.capacity - 1)), word, true) // P5: the claim, then the tail
  region.setBigUint64(TopicLayout.OFF_TAIL, BigInt(pos + 64), true)
  say({ claimed: pos, pid: process.pid })
  setInterval(() => {}, 1000)
} else if (mode === "parked") {
  const t = await join(name!)
  const sub = t.subscribe({}, { idle: "park" })
  say({ ready: true, pid: process.pid })
  void (async () => {
    for await (const ev of sub) say({ ev: ev.text() })
  })()
} else if (mode === "rawconnect" || mode === "rawflood") {
  const path = `\0${name!.slice(1)}`
  // the 32-byte hello's status word (§8.1), or null when the socket closed or 200 ms passed without one
  const hello = () =>
    new Promise<number | null>((resolve) => {
      let got = Buffer.alloc(0)
      const timer = setTimeout(() => done(null), 200)
      const done = (status: number | null) => (clearTimeout(timer), resolve(status))
      Bun.connect({
        unix: path,
        socket: {
          data(s, d) {
            got = Buffer.concat([got, d])
            if (got.length >= 32) done(got.readUInt32LE(12)), s.end()
          },
          close: () => done(null),
          error: () => done(null),
        },
      }).then(
        (s) => setTimeout(() => s.end(), 200),
        () => done(null),
      )
    })
  if (mode === "rawconnect") say({ status: await hello() })
  else {
    const end = Date.now() + Number(a)
    let n = 0
    const statuses: Record<string, number> = {}
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (Date.now() < end) {
          n++
          const st = String(await hello())
          statuses[st] = (statuses[st] ?? 0) + 1
        }
      }),
    )
    say({ n, statuses })
  }
  process.exit(0)
} else if (mode === "rawbind") {
  Bun.listen({ unix: `\0${name!.slice(1)}`, socket: { data() {} } })
  say({ ready: true, pid: process.pid })
  setInterval(() => {}, 1000)
} else {
  process.stderr.write(`member: unknown mode ${mode}\n`)
  process.exit(2)
}
