// A contest name's mode markers (docs/PROTOCOL.md §12.5) bound by a process of another uid: a marker counts only when
// its holder runs as this user, so another uid cannot make this user's contest fail with ContestModeError.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { busName, spawn, stopAll, type Child } from "../support/helpers.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

afterEach(stopAll)

const skip = whyNotAsNobody(process.execPath)
const LEASES = join(import.meta.dir, "..", "..", "src", "leases", "index.ts")

/** A process of uid 65534 that binds and listens on `address` (an abstract name, given without its \0). */
async function squat(address: string): Promise<Child> {
  const script = `Bun.listen({ unix: "\\0${address}", socket: { data() {} } }); console.log("ready"); setInterval(() => {}, 1000)`
  const c = spawn(asNobody([process.execPath, "-e", script]), { env: nobodyEnv })
  await c.waitLine(/^ready$/, 20_000)
  return c
}

describe.skipIf(skip !== null)(`a contest's mode marker bound by a process of uid ${NOBODY}`, () => {
  test("is no cluster contest to the owner: its local Contest.open opens, with one warning naming the uid", async () => {
    const name = busName("modeuid")
    await squat(`slotbus-lease-cluster.${name}.12345`)
    const owner = spawn([
      process.execPath,
      "-e",
      `import { Contest } from ${JSON.stringify(LEASES)}
       const open = () => Contest.open(${JSON.stringify(name)}).then((c) => (c.close(), "opened"), (e) => e.name)
       console.log(await open(), await open())`,
    ])
    await owner.waitLine(/^\S+ \S+$/, 20_000)
    expect(owner.lines[0]).toBe("opened opened")
    const warned = owner.stderr.split("\n").filter((l) => l.includes(`uid ${NOBODY}`))
    expect(warned).toHaveLength(1)
    expect(warned[0]).toContain(`@slotbus-lease-cluster.${name}.12345`)
  }, 30_000)
})
