// SLOTBUS_SOCKET_DIR as a user writes it (docs/PROTOCOL.md §13.2), with Bun and Node peers: a relative path is a
// SocketDirError saying it must be absolute (one was accepted, resolved against each process's working directory, and
// every socket file stayed behind after close()); a trailing slash or a last "/." is no way past "a link is never
// followed"; and a hub and a worker that spell the same directory with and without a trailing slash find each other,
// also for a name at the length where a socket file's name is hashed (§13.2: `dir//file` is a byte longer).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { busName, type Child, stopAll } from "../support/helpers.ts"
import { PEER_RUNTIMES, type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const MEMBER = "native/portable-member.ts"
const made: string[] = []
afterEach(async () => {
  await stopAll()
  for (const p of made.splice(0)) rmSync(p, { recursive: true, force: true })
})
afterAll(removeNodeBuilds)

/** A fresh folder in the temp directory, removed after the test. */
function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-sockdir-"))
  made.push(dir)
  return dir
}

/** The four lines of an "opens" member: listen, connect, Topic.open and Contest.open, each "ok" or its error. */
async function opens(c: Child): Promise<string[]> {
  await c.waitLine(/^done$/, 30_000)
  const lines = c.lines.filter((l) => l !== "done")
  expect(lines.map((l) => l.split(" ")[0])).toEqual(["listen", "connect", "topic", "contest"])
  return lines
}

describe.each(PEER_RUNTIMES)("SLOTBUS_SOCKET_DIR under %s", (runtime) => {
  test.skipIf(peerSkip(runtime) !== null)(
    "a relative path: listen, connect, Topic.open and Contest.open are each a SocketDirError saying it must be absolute, and nothing is made in it",
    async () => {
      const cwd = folder()
      mkdirSync(join(cwd, "sock"), { mode: 0o700 }) // a directory that would do, but for how it is named
      const env = { ...process.env, SLOTBUS_SOCKET_DIR: "sock" }
      const lines = await opens(await peerChild(runtime, MEMBER, ["opens", busName("rel")], { env, cwd }))
      for (const line of lines) {
        expect(line).toMatch(/^\w+ SocketDirError: /)
        expect(line).toContain("the socket directory sock (from SLOTBUS_SOCKET_DIR) is a relative path")
        expect(line).toContain("must be absolute")
      }
      expect(readdirSync(join(cwd, "sock"))).toEqual([])
    },
    60_000,
  )

  // how a link can be named so that lstat follows it, and what the refusal says (link: the link's path)
  const spellings: [string, (link: string) => string, (link: string) => string][] = [
    ["a trailing slash", (link) => `${link}//`, (link) => `${link} (from SLOTBUS_SOCKET_DIR) is a symbolic link`],
    ["a last component of .", (link) => `${link}/.`, (link) => `${link}/. (from SLOTBUS_SOCKET_DIR) ends in /.,`],
  ]
  test.skipIf(peerSkip(runtime) !== null).each(spellings)(
    "a symbolic link named with %s is refused, and nothing is made in its target",
    async (_, spell, says) => {
      const target = folder() // 0700, this user's: what the link points at would do
      const link = join(folder(), "link")
      symlinkSync(target, link)
      const env = { ...process.env, SLOTBUS_SOCKET_DIR: spell(link) }
      const lines = await opens(await peerChild(runtime, MEMBER, ["opens", busName("slash")], { env }))
      for (const line of lines) {
        expect(line).toMatch(/^\w+ SocketDirError: /)
        expect(line).toContain(`the socket directory ${says(link)}`)
      }
      expect(readdirSync(target)).toEqual([])
    },
    60_000,
  )
})

const pairs: [PeerRuntime, PeerRuntime][] = [
  ["bun", "node"],
  ["node", "bun"],
]

describe("one directory spelt with and without a trailing slash", () => {
  for (const [hubRuntime, workerRuntime] of pairs)
    test.skipIf((peerSkip(hubRuntime) ?? peerSkip(workerRuntime)) !== null)(
      `a ${hubRuntime} hub given \`dir/\` and a ${workerRuntime} worker given \`dir\` meet, for a name whose socket file is hashed after \`dir//\` but not after \`dir/\``,
      async () => {
        const name = busName("slash")
        // dir + "/slotbus." + name is 103 bytes, the most sun_path holds unhashed (§13.2)
        const base = folder()
        const dir = join(base, "d".repeat(103 - base.length - 1 - "/slotbus.".length - name.length))
        expect(`${dir}/slotbus.${name}`.length).toBe(103)
        mkdirSync(dir, { mode: 0o700 })
        const hub = await peerChild(hubRuntime, MEMBER, ["hub", name], {
          env: { ...process.env, SLOTBUS_SOCKET_DIR: `${dir}/` },
        })
        await hub.waitLine(/^ready$/, 30_000)
        const worker = await peerChild(workerRuntime, MEMBER, ["worker", name], {
          env: { ...process.env, SLOTBUS_SOCKET_DIR: dir },
        })
        await worker.waitLine(/^ready$/, 30_000)
        await hub.waitLine(/^response 200$/, 30_000)
        await hub.waitLine(/^event x$/, 30_000)
        expect(readdirSync(dir)).toContain(`slotbus.${name}`) // the name unhashed, as `dir/` + file fits
      },
      60_000,
    )
})
