// Members for stall.test.ts: publishers of large patterned events on a small ring, and a subscriber that
// checks every byte. One JSON line per milestone on stdout.
//   pub <topic> <index> <stop-file> publish events of ~12000 bytes until <stop-file> exists, then "ctl.end" on
//                                  <topic>-ctl and say how many it published
//   sub <topic> <publishers>      receive until every publisher's "ctl.end", checking each event's bytes
import { existsSync } from "node:fs"
import { Topic } from "../../../src/events/index.ts"

const [mode, name, a, b] = process.argv.slice(2)
const say = (o: object) => process.stdout.write(JSON.stringify(o) + "\n")
export const CAPACITY = 1 << 16

/** The byte a publisher writes at data offset i of its event seq (after its 8-byte pub, seq prefix); it
 * repeats every 64 events, so publishers spend their time in publish, not in making patterns. */
const pattern = (pub: number, seq: number, i: number) => (pub * 131 + (seq & 63) * 7 + i * 13 + (i >> 8)) & 0xff

if (mode === "pub") {
  const t = await Topic.open(name!, { capacity: CAPACITY })
  const index = Number(a),
    stopFile = b!
  say({ ready: true, pid: process.pid })
  const events = Array.from({ length: 64 }, (_, s) => {
    const data = new Uint8Array(11000 + ((s * 7919 + index * 104729) % 2000))
    new DataView(data.buffer).setUint32(0, index, true)
    for (let i = 8; i < data.length; i++) data[i] = pattern(index, s, i - 8)
    return data
  })
  let count = 0
  while (!existsSync(stopFile))
    for (const end = count + 64; count < end; count++) {
      const data = events[count & 63]!
      new DataView(data.buffer).setUint32(4, count, true)
      t.publish({ type: "s", data })
    }
  const ctl = await Topic.open(`${name}-ctl`, { capacity: 1 << 16 })
  ctl.publish({ type: "ctl.end" })
  say({ published: count })
  t.close()
  ctl.close()
  setTimeout(() => process.exit(0), 100)
} else if (mode === "sub") {
  const publishers = Number(a)
  const t = await Topic.open(name!, { capacity: CAPACITY })
  const sub = t.subscribe({ type: "s" }, { queue: 1 << 16, idle: "spin" })
  const ctlTopic = await Topic.open(`${name}-ctl`, { capacity: 1 << 16 })
  const ctl = ctlTopic.subscribe({ type: "ctl.end" }, { queue: 64, idle: "park" })
  say({ ready: true, pid: process.pid })
  let foreign = 0,
    outOfOrder = 0,
    got = 0,
    firstForeign = ""
  const last = new Map<number, number>()
  const take = () => {
    const batch = sub.poll()
    batch.forEachRaw((_id, _type, data) => {
      const d = new DataView(data.buffer, data.byteOffset, data.byteLength)
      const pub = d.getUint32(0, true),
        seq = d.getUint32(4, true)
      for (let i = 8; i < data.length; i++)
        if (data[i] !== pattern(pub, seq, i - 8)) {
          if (!foreign)
            firstForeign = `publisher ${pub} seq ${seq}: byte ${i - 8} is ${data[i]}, not ${pattern(pub, seq, i - 8)}`
          foreign++
          break
        }
      if ((last.get(pub) ?? -1) >= seq) outOfOrder++
      last.set(pub, seq)
    })
    got += batch.count
    return batch.count
  }
  let ends = 0
  while (ends < publishers) {
    for (let n = ctl.poll().count; n > 0; n = ctl.poll().count) ends += n
    // spin (a reader that keeps up reads records while stopped publishers may still write into them)
    for (let i = 0; i < 2000; i++) take()
    await Bun.sleep(0)
  }
  for (let idle = 0; idle < 3; ) (idle = take() === 0 ? idle + 1 : 0), await Bun.sleep(1)
  say({
    done: true,
    received: sub.received,
    lagged: sub.lagged,
    corrupt: sub.corrupt,
    estimates: sub.estimates,
    got,
    foreign,
    firstForeign,
    outOfOrder,
    fenced: t.stats().fenced,
  })
  sub.close()
  t.close()
  ctlTopic.close()
  setTimeout(() => process.exit(0), 100)
} else {
  process.stderr.write(`stall: unknown mode ${mode}\n`)
  process.exit(2)
}
