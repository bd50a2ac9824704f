// A topic's name belongs to its members' uid for as long as any member lives (docs/PROTOCOL.md §8.1): another
// uid can neither join nor, when the creator dies, take the name over and turn the owner's newcomers away.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { FIXTURES, spawn, stopAll, type Child } from "../support/helpers.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

const MEMBER = join(import.meta.dir, "procs", "member.ts")
const TOPIC_MEMBER = join(FIXTURES, "topic-member.ts")
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
/** test/support/topic-member.ts with the topic opened locally (no NATS), as root or, with `nobody`, as nobody. */
const member = (name: string, args: string[], nobody = false) => {
  const cmd = [process.execPath, TOPIC_MEMBER, name, "-", ...args]
  return nobody ? spawn(asNobody(cmd), { env: nobodyEnv }) : spawn(cmd)
}
/** A process as nobody that tries to open (or create) the topic and says what happened. */
async function squat(name: string, timeoutMs: number) {
  const c = spawn(asNobody([process.execPath, MEMBER, "squat", name, String(timeoutMs)]), { env: nobodyEnv })
  const said = await lineOf(c)
  await c.proc.exited
  return said
}

describe.skipIf(skipReason !== null)(`uid ${NOBODY} and a topic of root's`, () => {
  test("cannot join it: PeerRefusedError, nothing created", async () => {
    const name = fresh()
    const here = await Topic.open(name)
    topics.push(here)
    const said = await squat(name, 5000)
    expect(said).toMatchObject({ opened: false, error: "PeerRefusedError" })
  })

  test("cannot take the name when the creator is killed while every other member is stopped; the owner's newcomer then joins the same ring", async () => {
    const name = fresh()
    const creator = hold(name)
    expect(await lineOf(creator)).toMatchObject({ ready: true, keeper: true })
    const survivor = hold(name)
    expect(await lineOf(survivor)).toMatchObject({ ready: true, keeper: false })
    // No member can answer or rebind: before the shared listening socket, the name was free here (failed: the
    // squatter created its own topic, and root's newcomer below got EPERM from it).
    survivor.proc.kill("SIGSTOP")
    creator.proc.kill("SIGKILL")
    await creator.proc.exited
    const said = await squat(name, 1000)
    expect(said.created).not.toBe(true)
    expect(said.opened).toBe(false)
    survivor.proc.kill("SIGCONT")
    const newcomer = await Topic.open(name)
    topics.push(newcomer)
    expect(newcomer.isKeeper).toBe(false)
    const replay = newcomer.subscribe({ type: "held" }, { from: "oldest" })
    // the creator's five events and the survivor's five: the very ring they shared
    expect([...replay.poll()].map((e) => e.text())).toEqual(["0", "1", "2", "3", "4", "0", "1", "2", "3", "4"])
  })

  test("cannot take the name by flooding it with opens after the creator's kill -9 while a member runs: the member keeps answering, the owner's newcomer joins the same ring", async () => {
    const name = fresh()
    const creator = hold(name)
    expect(await lineOf(creator)).toMatchObject({ ready: true, keeper: true })
    const survivor = hold(name)
    expect(await lineOf(survivor)).toMatchObject({ ready: true, keeper: false })
    creator.proc.kill("SIGKILL")
    await creator.proc.exited
    // three processes of another uid, 16 opens at a time each, for 3 s: the listening socket's backlog stays full
    const floods = [1, 2, 3].map(() =>
      spawn(asNobody([process.execPath, MEMBER, "flood", name, "3000"]), { env: nobodyEnv }),
    )
    const said = await Promise.all(floods.map(lineOf))
    for (const s of said) {
      expect(s.took).toBe(false)
      expect(s.n as number).toBeGreaterThan(0)
    }
    expect(survivor.proc.exitCode).toBeNull()
    const newcomer = await Topic.open(name)
    topics.push(newcomer)
    expect(newcomer.isKeeper).toBe(false)
    const replay = newcomer.subscribe({ type: "held" }, { from: "oldest" })
    expect([...replay.poll()].map((e) => e.text())).toEqual(["0", "1", "2", "3", "4", "0", "1", "2", "3", "4"])
  }, 30_000)

  test("a loop of opens already running when the keeper is killed takes nothing: the owner's newcomer joins and reaches the subscribed survivor, which becomes the keeper", async () => {
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
    const squat = JSON.parse((await other.waitLine(/^squat /)).input!.slice(6)) as {
      n: number
      failed: Record<string, number>
      took: boolean
    }
    expect(squat.took).toBe(false)
    expect(Object.keys(squat.failed)).toEqual(["PeerRefusedError"])
    expect(squat.failed.PeerRefusedError).toBe(squat.n)
    expect(survivor.running).toBe(true)
  }, 30_000)
})
