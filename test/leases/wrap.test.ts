// Member generations are 16 bits (docs/PROTOCOL.md §7.5): after 65 536 join/leave cycles of one member record
// a dead holder's claim must not be attributed to the innocent member that now has the same member|generation.
import { afterEach, expect, test } from "bun:test"
import { toArrayBuffer } from "bun:ffi"
import { Contest } from "../../src/leases/index.ts"
import { bunChild, busName, stopAll } from "../support/helpers.ts"

afterEach(stopAll)

const KIND = 7 // the fixture's kind
const MEMBER_WORD = (m: number) => 4096 + 64 * m

test("a dead holder's claim is taken over after its member record's generation wrapped to an innocent live member", async () => {
  const name = busName("wrap")
  const c = await Contest.open(name) // member 0
  try {
    const holder = bunChild("leases/lease-member.ts", ["hold", name, "job"]) // member 1, generation 0
    await holder.waitLine(/^held \d+$/)
    await holder.kill("SIGKILL")
    c.stats() // reaps member 1: FREE, generation 1

    // the test hook: jump the record to 16 generations before the wrap instead of churning 65 520 times
    const { address, size } = c.table()
    const table = new DataView(toArrayBuffer(address as never, 0, size))
    const word = table.getBigUint64(MEMBER_WORD(1), true)
    expect(word & 0xffn).toBe(0n) // FREE
    table.setBigUint64(MEMBER_WORD(1), 0xfff0n << 8n, true)
    for (let i = 0; i < 16; i++) {
      const churn = await Contest.open(name)
      expect(churn.member).toBe(1)
      churn.close()
    }
    expect((table.getBigUint64(MEMBER_WORD(1), true) >> 8n) & 0xffffn).toBe(0n) // wrapped: the dead holder's generation again

    const innocent = bunChild("leases/lease-member.ts", ["open", name])
    await innocent.waitLine(/^open 1$/)
    const r = c.tryClaim({ kind: KIND, label: "job" }, { owner: "survivor" })
    if (!r.claimed) throw new Error(`yielded to pid ${r.holder.pid} (the innocent member is ${innocent.pid})`)
    r.lease.release()
  } finally {
    c.close()
  }
}, 30_000)
