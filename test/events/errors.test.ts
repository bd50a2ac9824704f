// A topic's errors: "closed" and "full" are the shared shapes (ClosedError, FullError catch them in every room), and
// what the system refuses is a SystemError with its errno as data.
import { afterEach, expect, test } from "bun:test"
import { once } from "node:events"
import { randomBytes } from "node:crypto"
import { rmSync } from "node:fs"
import { createServer } from "node:net"
import { constants } from "node:os"
import { join } from "node:path"
import { ClosedError, FullError, Topic, TopicClosedError, TopicFullError } from "../../src/events/index.ts"
import { socketDirectory } from "../../src/native/socket-dir.ts"
import { busName, FIXTURES, run } from "../support/helpers.ts"

const cleanup: { close(): void }[] = []
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c.close()
})

function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error("expected a throw")
}

test("a closed topic's publish throws TopicClosedError, which is a ClosedError", async () => {
  const t = await Topic.open(busName("closed-shape"))
  t.close()
  const e = thrown(() => t.publish({ type: "x" }))
  expect(e).toBeInstanceOf(TopicClosedError)
  expect(e).toBeInstanceOf(ClosedError)
})

test("a rule beyond the topic's rule table throws TopicFullError, which is a FullError", async () => {
  const t = await Topic.open(busName("full-shape"))
  cleanup.push(t)
  let e: unknown
  for (let i = 0; i <= 64 && e === undefined; i++) {
    try {
      t.bind({ type: `t${i}`, keys: ["a", "b"], fill: "c" })
    } catch (err) {
      e = err
    }
  }
  expect(e).toBeInstanceOf(TopicFullError)
  expect(e).toBeInstanceOf(FullError)
})

test("a subscribe in a process at its open-file limit throws a SystemError whose errno and code are EMFILE", async () => {
  // the child takes every fd `ulimit -n` leaves it, so its subscription's wake socket cannot be made
  const r = await run(
    [
      "sh",
      "-c",
      'ulimit -n 256 && exec "$0" "$@"',
      process.execPath,
      `${FIXTURES}/events/topic-no-fds.ts`,
      busName("nofd"),
    ],
    { timeoutMs: 30_000 },
  )
  expect(r.stderr).toBe("")
  expect(JSON.parse(r.stdout)).toMatchObject({
    threw: true,
    name: "SystemError",
    slotbus: true,
    errno: constants.errno.EMFILE,
    code: "EMFILE",
  })
}, 60_000)

// A process of this uid listening at the topic's socket file that answers newcomers with a hello of its own making.
// before: its status field was taken for an errno ("SystemError EUNKNOWN (errno -1519772598)" for random bytes,
// ENOSPC, EINVAL, a retry to the deadline for ECONNRESET), read from a hello that was not one
async function helloFrom(name: string, hello: Buffer): Promise<{ close(): void }> {
  const path = join(await socketDirectory(), `slotbus.topic.${name}`)
  const server = createServer((c) => c.end(hello)).listen(path)
  await once(server, "listening")
  return { close: () => (server.close(), rmSync(path, { force: true })) }
}
const topicHello = (magic: number, status: number) => {
  const b = Buffer.alloc(32)
  b.writeUInt32LE(magic, 0)
  b.writeUInt32LE(3, 4) // version
  b.writeInt32LE(status, 12)
  return b
}
const MAGIC = 0x50544253

for (const [what, hello, error] of [
  ["4 KiB of random bytes", randomBytes(4096), "ProtocolError"],
  ["3 bytes", Buffer.from([1, 2, 3]), "ProtocolError"],
  ["a foreign magic with status ENOSPC", topicHello(0x12345678, constants.errno.ENOSPC), "ProtocolError"],
  ["our magic with status ECONNRESET", topicHello(MAGIC, constants.errno.ECONNRESET), "ProtocolError"],
  ["our magic with status EINVAL", topicHello(MAGIC, constants.errno.EINVAL), "ProtocolError"],
  ["our magic with status EPERM (a member's refusal)", topicHello(MAGIC, constants.errno.EPERM), "PeerRefusedError"],
] as const)
  test(`a same-uid listener at the topic's name answering ${what}: ${error} at once`, async () => {
    const name = busName("badhello")
    cleanup.push(await helloFrom(name, hello))
    const e = (await Topic.open(name, { timeoutMs: 2000 }).catch((x) => x)) as Error
    expect(e.name).toBe(error)
  })
