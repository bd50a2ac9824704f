// A contest name's mode markers (docs/PROTOCOL.md §12.5) as version 2 made them (abstract names), bound by a process of
// another uid: the markers are lock files in the owner's own socket directory now (§1.1), so the squat is nothing of
// the owner's: no ContestModeError, no warning.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { busName, spawn, type Child } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

// each test's own processes (stopAll would end the file's nats-server too)
const children: Child[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})

const skip = whyNotAsNobody(process.execPath)
const natsSkip = skip ?? natsSkipReason()
if (natsSkip) console.warn(`the cluster side of the mode-marker uid tests is skipped: ${natsSkip}`)
const ROOT = join(import.meta.dir, "..", "..", "src")
const LEASES = join(ROOT, "leases", "index.ts")

let nats: { url: string; server: Child } | undefined
beforeAll(async () => {
  if (!natsSkip) nats = await startNats({ jetstream: true })
}, 30_000)
afterAll(async () => {
  await nats?.server.kill()
})

/** The owner: opens contest `name` twice with `options` (a source text), prints how each went ("opened" or the error). */
function owner(name: string, options = "{}"): Child {
  return started(
    spawn([
      process.execPath,
      "-e",
      `import { Contest } from ${JSON.stringify(LEASES)}
     import { nats } from ${JSON.stringify(join(ROOT, "nats", "index.ts"))}
     const open = () => Contest.open(${JSON.stringify(name)}, ${options}).then(async (c) => (await c.close(), "opened"), (e) => e.name)
     console.log(await open(), await open())
     process.exit(0)`,
    ]),
  )
}

function started(c: Child): Child {
  children.push(c)
  return c
}

/** A process of uid 65534 that binds and listens on `address` (an abstract name, given without its \0). */
async function squat(address: string): Promise<Child> {
  const script = `Bun.listen({ unix: "\\0${address}", socket: { data() {} } }); console.log("ready"); setInterval(() => {}, 1000)`
  const c = started(spawn(asNobody([process.execPath, "-e", script]), { env: nobodyEnv }))
  await c.waitLine(/^ready$/, 20_000)
  return c
}

describe.skipIf(skip !== null)(`a contest's mode marker bound by a process of uid ${NOBODY}`, () => {
  test("is no cluster contest to the owner: its local Contest.open opens, with no warning", async () => {
    const name = busName("modeuid")
    await squat(`slotbus-lease-cluster.${name}.12345`)
    const o = owner(name)
    await o.waitLine(/^\S+ \S+$/, 20_000)
    expect(o.lines[0]).toBe("opened opened")
    const warned = o.stderr.split("\n").filter((l) => l.includes(`uid ${NOBODY}`))
    expect(warned).toEqual([]) // a version 2 name: nothing of the owner's, nothing to warn of (main warned once)
  }, 30_000)
})

describe.skipIf(natsSkip !== null)(`a local contest's socket bound by a process of uid ${NOBODY}`, () => {
  test("is no local contest to the owner: its cluster Contest.open opens, with no warning", async () => {
    const name = busName("modeuid")
    await squat(`slotbus-lease.${name}`)
    const o = owner(name, `{ remote: nats(${JSON.stringify(nats?.url)}) }`)
    await o.waitLine(/^\S+ \S+$/, 20_000)
    expect(o.lines[0]).toBe("opened opened")
    const warned = o.stderr.split("\n").filter((l) => l.includes(`uid ${NOBODY}`))
    expect(warned).toEqual([]) // a version 2 name: nothing of the owner's, nothing to warn of (main warned once)
  }, 30_000)
})
