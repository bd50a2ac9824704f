// A topic's bridge election (docs/PROTOCOL.md §11.4) against a process of another uid that holds its version 2 name
// first (the abstract "\0slotbus.bridge.<topic>"): the election is a socket file in the owner's own directory now
// (§1.1), so the squat holds nothing and the owner bridges at once. Needs
// `nats-server` (apt-get install -y nats-server) and root (to start a process as uid 65534).
import { describe, expect, test } from "bun:test"
import { bunChild, busName, spawn, until, type Child } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

const skip = natsSkipReason() ?? whyNotAsNobody(process.execPath)
if (skip) console.warn(`the bridge-election uid tests are skipped: ${skip}`)
const ctx = natsPerFile(skip)

function started(c: Child): Child {
  ctx.cleanup.push(async () => {
    await c.kill()
  })
  return c
}

/** A process of uid 65534 that binds and listens on version 2's bridge election name of topic `name` before the owner. */
async function squat(name: string): Promise<Child> {
  const script = `Bun.listen({ unix: "\\0slotbus.bridge.${name}", socket: { data() {} } }); console.log("ready"); setInterval(() => {}, 1000)`
  const c = started(spawn(asNobody([process.execPath, "-e", script]), { env: nobodyEnv }))
  await c.waitLine(/^ready$/, 20_000)
  return c
}

describe.skipIf(skip !== null)(`a topic's bridge election: version 2's name held by a process of uid ${NOBODY}`, () => {
  test("holds nothing of the owner's: the owner bridges at once, with no warning", async () => {
    const name = busName("tbuid")
    await squat(name)
    const owner = started(bunChild("events/topic-member.ts", [name, ctx.url, "bridge"]))
    await owner.waitLine(/^ready \d+$/, 20_000)
    // main: it warned "… is held by a process of uid 65534 …" and bridged only once the squatter was gone
    await owner.waitLine(/^bridging \d+$/, 20_000)
    expect(owner.stderr.split("\n").filter((l) => l.includes(`uid ${NOBODY}`))).toEqual([])
  }, 60_000)
})
