// A topic's bridge election (docs/PROTOCOL.md §11.4) against a process of another uid that holds its name first:
// the owner never takes it for the host's bridge, says so once naming the uid, and bridges once it is gone. Needs
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

/** A process of uid 65534 that binds and listens on the bridge election's name of topic `name` before the owner. */
async function squat(name: string): Promise<Child> {
  const script = `Bun.listen({ unix: "\\0slotbus.bridge.${name}", socket: { data() {} } }); console.log("ready"); setInterval(() => {}, 1000)`
  const c = started(spawn(asNobody([process.execPath, "-e", script]), { env: nobodyEnv }))
  await c.waitLine(/^ready$/, 20_000)
  return c
}

describe.skipIf(skip !== null)(`a topic's bridge election held by a process of uid ${NOBODY}`, () => {
  test("is no bridge to the owner, who warns once naming the uid and bridges once that process is gone", async () => {
    const name = busName("tbuid")
    const squatter = await squat(name)
    const owner = started(bunChild("topic-member.ts", [name, ctx.url, "bridge"]))
    await owner.waitLine(/^ready \d+$/, 20_000)
    const warned = () => owner.stderr.split("\n").filter((l) => l.includes(`uid ${NOBODY}`))
    await until(() => warned().length > 0, `the owner warns that uid ${NOBODY} holds the bridge's name`, 20_000)
    expect(owner.lines.some((l) => l.startsWith("bridging"))).toBe(false)
    await squatter.kill()
    await owner.waitLine(/^bridging \d+$/, 20_000)
    expect(warned()).toHaveLength(1)
    expect(warned()[0]).toContain(`@slotbus.bridge.${name}`)
  }, 60_000)
})
