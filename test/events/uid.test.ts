// A topic belongs to its uid (docs/PROTOCOL.md §8.1): its rendezvous is a socket file in the uid's own 0700 socket
// directory (§1.1), so another uid's Topic.open of the same name makes a topic of its own and never meets the
// owner's, and what it binds or connects to by hand at version 2's abstract name is nothing of the owner's.
import { afterEach, describe, expect, test } from "bun:test"
import { lstatSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { FIXTURES, linuxBackend, spawn, stopAll, type Child } from "../support/helpers.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

const MEMBER = join(import.meta.dir, "procs", "member.ts")
const TOPIC_MEMBER = join(FIXTURES, "events/topic-member.ts")
const skipReason = whyNotAsNobody(MEMBER) ?? whyNotAsNobody(TOPIC_MEMBER)
if (skipReason) console.warn(`events uid.test skipped: ${skipReason}`)

const topics: Topic[] = []
afterEach(async () => {
  await stopAll()
  for (const t of topics.splice(0)) await t.close()
})

const fresh = () => `uid-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
const hold = (name: string) => spawn([process.execPath, MEMBER, "hold", name, String(1 << 16)])
const lineOf = async (c: Child) => JSON.parse((await c.waitLine(/^\{.*\}$/)).input!) as Record<string, unknown>
/** test/support/events/topic-member.ts with the topic opened locally (no NATS), as root or, with `nobody`, as nobody. */
const member = (name: string, args: string[], nobody = false) => {
  const cmd = [process.execPath, TOPIC_MEMBER, name, "-", ...args]
  return nobody ? spawn(asNobody(cmd), { env: nobodyEnv }) : spawn(cmd)
}
/** The abstract name version 2 gave this uid's topic (§8.1), as /proc/net/unix shows it: nobody listens there now,
 * the topic is a socket file in a directory only this uid can enter (§1.1). */
const socketOf = (name: string) => `@slotbus.topic.${process.geteuid!()}.${name}`
const raw = (mode: string, name: string, ...args: string[]) =>
  spawn(asNobody([process.execPath, MEMBER, mode, socketOf(name), ...args]), { env: nobodyEnv })
/** A process as nobody that tries to open (or create) the topic and says what happened. */
async function squat(name: string, timeoutMs: number) {
  const c = spawn(asNobody([process.execPath, MEMBER, "squat", name, String(timeoutMs)]), { env: nobodyEnv })
  const said = await lineOf(c)
  await c.proc.exited
  return said
}

describe.skipIf(skipReason !== null)(`uid ${NOBODY} and a topic of root's`, () => {
  test("its open of the same name makes a topic of its own: root's is untouched and root's newcomer joins root's ring", async () => {
    const name = fresh()
    const creator = hold(name)
    expect(await lineOf(creator)).toMatchObject({ ready: true, keeper: true })
    // failed before the euid was in the name: { opened: false, error: "PeerRefusedError" }
    expect(await squat(name, 5000)).toMatchObject({ opened: true, created: true })
    const newcomer = await Topic.open(name)
    topics.push(newcomer)
    expect(newcomer.isKeeper).toBe(false)
    expect(newcomer.stats().keeperPid).toBe(creator.pid)
    const replay = newcomer.subscribe({ type: "held" }, { from: "oldest" })
    expect([...replay.poll()].map((e) => e.text())).toEqual(["0", "1", "2", "3", "4"])
  })

  test.skipIf(!linuxBackend)(
    "version 2's abstract name of root's topic leads nowhere: a connect there by hand gets no hello, and the socket file is in root's 0700 directory",
    async () => {
      const name = fresh()
      const here = await Topic.open(name)
      topics.push(here)
      const c = raw("rawconnect", name)
      expect(await lineOf(c)).toEqual({ status: null }) // main: { status: 1 }, root's own socket reached
      const file = readFileSync("/proc/net/unix", "utf8")
        .split("\n")
        .map((l) => l.slice(l.lastIndexOf(" ") + 1))
        .find((p) => p.endsWith(`/slotbus.topic.${name}`))
      expect(file).toBeDefined()
      expect(lstatSync(dirname(file!))).toMatchObject({ uid: process.geteuid!(), mode: 0o40700 })
    },
  )

  test.skipIf(!linuxBackend)(
    "a bind of version 2's abstract name of root's topic by hand before root: root's open is root's own topic all the same",
    async () => {
      const name = fresh()
      const squatter = raw("rawbind", name)
      expect(await lineOf(squatter)).toMatchObject({ ready: true })
      // main: PeerRefusedError "topic … is held by a process of another user …"
      const topic = await Topic.open(name, { timeoutMs: 5000 })
      topics.push(topic)
      expect(topic.isKeeper).toBe(true)
    },
  )

  test("opens only a topic of its own when the creator is killed while every other member is stopped; the owner's newcomer then joins the same ring", async () => {
    const name = fresh()
    const creator = hold(name)
    expect(await lineOf(creator)).toMatchObject({ ready: true, keeper: true })
    const survivor = hold(name)
    expect(await lineOf(survivor)).toMatchObject({ ready: true, keeper: false })
    // No member can answer or rebind: before the shared listening socket, the name was free here (failed: the
    // squatter created its own topic under root's name, and root's newcomer below got EPERM from it).
    survivor.proc.kill("SIGSTOP")
    creator.proc.kill("SIGKILL")
    await creator.proc.exited
    expect(await squat(name, 1000)).toMatchObject({ opened: true, created: true })
    survivor.proc.kill("SIGCONT")
    const newcomer = await Topic.open(name)
    topics.push(newcomer)
    expect(newcomer.isKeeper).toBe(false)
    const replay = newcomer.subscribe({ type: "held" }, { from: "oldest" })
    // the creator's five events and the survivor's five: the very ring they shared
    expect([...replay.poll()].map((e) => e.text())).toEqual(["0", "1", "2", "3", "4", "0", "1", "2", "3", "4"])
  })

  test("a loop of opens already running when the keeper is killed keeps only a topic of its own: the owner's newcomer joins and reaches the subscribed survivor, which becomes the keeper", async () => {
    // The sequence (round four, item 13). Failed before: the survivor's keeperPid stayed the dead keeper's.
    const name = fresh()
    const keeper = member(name, ["lpub", "k", "0", "k", "1"])
    await keeper.waitLine(/^ready/)
    const survivor = member(name, ["lsub", "*"])
    await survivor.waitLine(/^ready/)
    expect(Number((await survivor.waitLine(/^keeper (\d+)$/))[1])).toBe(keeper.pid)
    const other = member(name, ["lsquat", "2500"], true)
    await Bun.sleep(800)
    keeper.proc.kill("SIGKILL")
    await Bun.sleep(300)
    const newcomer = await Topic.open(name, { timeoutMs: 1000 })
    topics.push(newcomer)
    expect(newcomer.isKeeper).toBe(false)
    newcomer.publish({ type: "n", data: "from the newcomer" })
    await survivor.waitLine(/^ev from the newcomer$/)
    // the keeper's kill -9 is seen on the survivor's next tick (a deep one if it is still a zombie)
    const took = Number((await survivor.waitLine(new RegExp(`^keeper (?!0$|${keeper.pid}$)(\\d+)$`), 5000))[1])
    expect([survivor.pid, process.pid]).toContain(took)
    const squat = JSON.parse((await other.waitLine(/^squat /)).input!.slice(6)) as { n: number; took: boolean }
    // its first open made a topic of its own, which it kept: it never met root's
    expect(squat).toMatchObject({ n: 1, took: true })
    expect(survivor.lines.filter((l) => /^keeper /.test(l))).not.toContain(`keeper ${other.pid}`)
    expect(survivor.running).toBe(true)
  }, 30_000)
})
