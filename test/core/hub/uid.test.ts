// The rendezvous checks SO_PEERCRED: a worker running as another uid is refused unless the hub allows it.
import { describe, expect, test } from "bun:test"
import {
  chmodSync,
  chownSync,
  mkdtempSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { SlotBus, type SlotResponse } from "../../../src/index.ts"
import { busName, type Child, eventually, FIXTURES, spawn } from "../../support/helpers.ts"
import { join } from "node:path"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../../support/uid.ts"

const FIXTURE = join(FIXTURES, "core/crash-worker.ts")
const BUN = process.execPath
const skipReason = whyNotAsNobody(FIXTURE)
if (skipReason) console.warn(`uid.test skipped: ${skipReason}`)

function nobodyWorker(name: string, ...flags: string[]) {
  return spawn(asNobody([BUN, FIXTURE, name, "echo", ...flags]), { env: nobodyEnv })
}

describe.skipIf(skipReason !== null)(`a worker running as uid ${NOBODY}`, () => {
  test("is refused by a hub that does not allow its uid: PeerRefusedError on its side, refusedPeers on the hub's", async () => {
    const name = busName("uid-refused")
    const bus = await SlotBus.listen(name, { allowUids: [4242] }) // a door (docs/PROTOCOL.md §1.1), not for nobody
    const worker = nobodyWorker(name, "--hub-uid=0") // it trusts the hub; the hub must say no
    try {
      expect((await worker.waitLine(/^(ready|error) (\S+)/))[0]).toBe("error PeerRefusedError")
      expect(await worker.proc.exited).toBe(2)
      expect(await eventually(() => bus.stats().refusedPeers === 1)).toBe(true)
      expect(bus.workers).toEqual([])
    } finally {
      await worker.kill()
      await bus.close()
    }
  }, 15_000)

  test("does not find a hub running as root unless told the hub's uid, and never becomes one of its workers", async () => {
    const name = busName("uid-distrust")
    const bus = await SlotBus.listen(name, { allowUids: [NOBODY] })
    const worker = nobodyWorker(name) // expects a hub of its own uid: it looks in its own socket directory (§1.1)
    try {
      expect((await worker.waitLine(/^(ready|error) (\S+)/))[0]).toBe("error HubNotFoundError")
      expect(await worker.proc.exited).toBe(2)
      await Bun.sleep(50) // a few accept ticks: the connection it dropped must not become a worker
      expect(bus.workers).toEqual([])
    } finally {
      await worker.kill()
      await bus.close()
    }
  }, 15_000)

  test("is accepted with allowUids and serves requests when it names the hub's uid", async () => {
    const name = busName("uid-allowed")
    const bus = await SlotBus.listen(name, { allowUids: [NOBODY] })
    const worker = nobodyWorker(name, "--hub-uid=0")
    try {
      expect((await worker.waitLine(/^(ready|error) .*/))[0]).toBe(`ready ${worker.pid} ${NOBODY}`)
      await bus.waitForWorkers(1)
      expect(bus.workers.map((w) => [w.pid, w.uid])).toEqual([[worker.pid, NOBODY]])
      const raw = await Promise.all(Array.from({ length: 32 }, (_, i) => bus.call(`as-nobody-${i}`)))
      expect(raw.map((b) => new TextDecoder().decode(b))).toEqual(
        Array.from({ length: 32 }, (_, i) => `as-nobody-${i}`.split("").reverse().join("")),
      )
      const r = (await bus.request({ method: "POST", path: "/who", body: "hi" })) as SlotResponse
      expect([r.status, r.headers.get("x-pid"), r.text()]).toEqual([200, String(worker.pid), "hi"])
      expect(bus.stats().refusedPeers).toBe(0)
    } finally {
      await worker.kill()
      await bus.close()
    }
  }, 15_000)
})

describe.skipIf(skipReason !== null)("a hub with allowUids", () => {
  test("still accepts workers of its own uid, as docs/PROTOCOL.md §1 says (own uid, or one it was configured to allow)", async () => {
    const name = busName("uid-own")
    const bus = await SlotBus.listen(name, { allowUids: [NOBODY] })
    const worker = spawn([BUN, FIXTURE, name, "echo"])
    try {
      expect((await worker.waitLine(/^(ready|error) .*/))[0]).toBe(`ready ${worker.pid} 0`)
      await bus.waitForWorkers(1)
      expect(new TextDecoder().decode(await bus.call("root"))).toBe("toor")
      expect(bus.stats().refusedPeers).toBe(0)
    } finally {
      await worker.kill()
      await bus.close()
    }
  }, 15_000)
})

// A third uid (the tester user, else 4242: a uid with no user still runs Bun) that squats the door's names.
const SQUATTER = Number(Bun.spawnSync(["id", "-u", "tester"]).stdout.toString().trim()) || 4242
const DOOR = "/tmp/slotbus-door-0" // the fixed door directory of the hub's euid (root), docs/PROTOCOL.md §1.1
// It binds the old abstract door and makes a look-alike door directory of its own, mode 0711, with a listener
// named like the hub's door inside (and with "own", the fixed name too); it prints each connection it gets.
const SQUAT = `
const fs = require("fs"), name = process.env.SQUAT_NAME, dirs = JSON.parse(process.env.SQUAT_DIRS)
const socket = { open() { console.log("connected") }, data() {} }
Bun.listen({ unix: "\\0slotbus." + name, socket })
for (const d of dirs) {
  fs.mkdirSync(d, { mode: 0o711 }); fs.chmodSync(d, 0o711)
  Bun.listen({ unix: d + "/slotbus." + name, socket }); fs.chmodSync(d + "/slotbus." + name, 0o666)
}
console.log("squatting")
setInterval(() => {}, 1000)
`
function squatter(name: string, dirs: string[]): Child {
  const cmd = [Bun.which("setpriv")!, `--reuid=${SQUATTER}`, `--regid=${SQUATTER}`, "--clear-groups"]
  return spawn([...cmd, BUN, "-e", SQUAT], {
    env: { ...nobodyEnv, SQUAT_NAME: name, SQUAT_DIRS: JSON.stringify(dirs) },
  })
}
const doorDirs = () => new Set(readdirSync("/tmp").filter((f) => f.startsWith("slotbus-door-0.")))

describe.skipIf(skipReason !== null)("the door of a hub with allowUids (docs/PROTOCOL.md §1.1)", () => {
  // what another uid leaves at /tmp/slotbus-door-0 before the hub starts
  const squats: Record<string, (evil: string) => void> = {
    "nothing there (it holds the old abstract name only)": () => {},
    "its own directory, mode 0711, with a look-alike door in it": () => {},
    "a regular file": () => {
      writeFileSync(DOOR, "")
      chownSync(DOOR, SQUATTER, SQUATTER)
    },
    "a link to its own directory": (evil) => {
      symlinkSync(evil, DOOR)
      lchownSync(DOOR, SQUATTER, SQUATTER)
    },
    "a directory of mode 0777": () => {
      mkdirSync(DOOR, { mode: 0o777 })
      chownSync(DOOR, SQUATTER, SQUATTER)
    },
  }
  test("left by a hub killed -9, is recovered by the next hub of the name, which workers of the other uid reach", async () => {
    const name = busName("door-stale")
    const index = join(import.meta.dir, "../../../src/index.ts")
    const script = `const { SlotBus } = await import(${JSON.stringify(index)})
      await SlotBus.listen(process.argv.at(-1), { allowUids: [${NOBODY}] }); console.log("listening")`
    const hub = spawn([BUN, "-e", script, name])
    let bus: SlotBus | undefined
    let worker: Child | undefined
    try {
      await hub.waitLine(/^listening$/)
      hub.proc.kill(9)
      await hub.proc.exited
      expect(existsSync(`${DOOR}/slotbus.${name}`)).toBe(true) // stale: nobody unlinked it
      bus = await SlotBus.listen(name, { allowUids: [NOBODY] })
      worker = nobodyWorker(name, "--hub-uid=0")
      expect((await worker.waitLine(/^(ready|error) .*/))[0]).toBe(`ready ${worker.pid} ${NOBODY}`)
      expect(new TextDecoder().decode(await bus.call("stale"))).toBe("elats")
    } finally {
      await worker?.kill()
      await bus?.close()
      await hub.kill()
    }
    expect(existsSync(`${DOOR}/slotbus.${name}`)).toBe(false)
  }, 30_000)

  test("is in $SLOTBUS_DOOR_DIR when set, for the hub and its workers of the other uid alike, and nowhere else", async () => {
    const name = busName("door-env")
    const top = mkdtempSync("/tmp/slotbus-door-env-")
    chmodSync(top, 0o755)
    const dir = join(top, "door") // made by the hub, mode 0711
    const index = join(import.meta.dir, "../../../src/index.ts")
    const script = `const { SlotBus } = await import(${JSON.stringify(index)})
      const bus = await SlotBus.listen(process.argv.at(-1), { allowUids: [${NOBODY}] }); console.log("listening")
      await bus.waitForWorkers(1); console.log("answer " + new TextDecoder().decode(await bus.call("env")))
      await bus.close(); console.log("closed")`
    const hub = spawn([BUN, "-e", script, name], { env: { ...process.env, SLOTBUS_DOOR_DIR: dir } })
    let worker: Child | undefined
    try {
      await hub.waitLine(/^listening$/)
      expect(existsSync(`${dir}/slotbus.${name}`)).toBe(true)
      expect(existsSync(`${DOOR}/slotbus.${name}`)).toBe(false)
      const lost = nobodyWorker(name, "--hub-uid=0") // without the variable it looks in /tmp only
      expect((await lost.waitLine(/^(ready|error) (\S+)/))[0]).toBe("error HubNotFoundError")
      await lost.kill()
      worker = spawn(asNobody([BUN, FIXTURE, name, "echo", "--hub-uid=0"]), {
        env: { ...nobodyEnv, SLOTBUS_DOOR_DIR: dir },
      })
      expect((await hub.waitLine(/^answer .*/))[0]).toBe("answer vne")
      await hub.waitLine(/^closed$/)
      expect(existsSync(`${dir}/slotbus.${name}`)).toBe(false)
    } finally {
      await worker?.kill()
      await hub.kill()
      rmSync(top, { recursive: true, force: true })
    }
  }, 30_000)

  // before: a relative one was made in each process's working directory (hub and worker never met), and a link
  // named with a trailing slash was followed (lstat resolves "link/")
  test("$SLOTBUS_DOOR_DIR relative, or a link named with a trailing slash, is a SocketDirError for the hub and the worker; a real one with trailing slashes is itself", async () => {
    const name = busName("door-spelled")
    const top = mkdtempSync("/tmp/slotbus-door-spelled-")
    chmodSync(top, 0o755)
    const real = join(top, "door")
    mkdirSync(real, { mode: 0o711 })
    chmodSync(real, 0o711)
    symlinkSync(real, join(top, "link"))
    const index = join(import.meta.dir, "../../../src/index.ts")
    const script = `const { SlotBus } = await import(${JSON.stringify(index)})
      let bus
      try { bus = await SlotBus.listen(process.argv.at(-1), { allowUids: [${NOBODY}] }) }
      catch (e) { console.log("error " + e.name + " " + e.message); process.exit(0) }
      console.log("listening"); await bus.waitForWorkers(1); console.log("answer " + new TextDecoder().decode(await bus.call("dir")))
      await bus.close(); console.log("closed")`
    const hubWith = (door: string) =>
      spawn([BUN, "-e", script, name], { cwd: top, env: { ...process.env, SLOTBUS_DOOR_DIR: door } })
    const workerWith = (door: string) =>
      spawn(asNobody([BUN, FIXTURE, name, "echo", "--hub-uid=0"]), {
        cwd: top,
        env: { ...nobodyEnv, SLOTBUS_DOOR_DIR: door },
      })
    const started: Child[] = []
    try {
      for (const [door, says] of [
        ["door", "the door directory door (from SLOTBUS_DOOR_DIR) is a relative path; it must be absolute"],
        [
          `${join(top, "link")}/`,
          `the door directory ${join(top, "link")} (from SLOTBUS_DOOR_DIR) is not a directory of this user's`,
        ],
      ] as const) {
        const hub = hubWith(door)
        started.push(hub)
        const [line] = await hub.waitLine(/^(error|listening).*/)
        expect(line).toStartWith(`error SocketDirError cannot listen as "${name}": ${says}`)
        expect(line).toContain("set SLOTBUS_DOOR_DIR to the absolute path of a directory")
      }
      const lost = workerWith("door")
      started.push(lost)
      expect((await lost.waitLine(/^(ready|error) (\S+)/))[0]).toBe("error SocketDirError")
      expect(readdirSync(real)).toEqual([])

      const hub = hubWith(`${real}//`)
      started.push(hub)
      await hub.waitLine(/^listening$/)
      expect(existsSync(`${real}/slotbus.${name}`)).toBe(true)
      started.push(workerWith(`${real}/`))
      expect((await hub.waitLine(/^answer .*/))[0]).toBe("answer rid")
      await hub.waitLine(/^closed$/)
    } finally {
      for (const c of started) await c.kill()
      rmSync(top, { recursive: true, force: true })
    }
  }, 30_000)

  test.each(Object.keys(squats))(
    "cannot be blocked or stood in for by another uid that squats its names first: %s",
    async (squat) => {
      const name = busName("door-squat")
      const evil = `/tmp/slotbus-door-0.evil${process.pid}`
      rmSync(DOOR, { recursive: true, force: true })
      const before = doorDirs()
      const squatting = squatter(name, squat.startsWith("its own") ? [evil, DOOR] : [evil])
      let bus: SlotBus | undefined
      let worker: Child | undefined
      try {
        await squatting.waitLine(/^squatting$/)
        squats[squat]!(evil)
        // with nobody of uid 0 listening, the worker finds no hub: it connects to neither look-alike
        const early = nobodyWorker(name, "--hub-uid=0")
        expect((await early.waitLine(/^(ready|error) (\S+)/))[0]).toBe("error HubNotFoundError")
        await early.kill()
        bus = await SlotBus.listen(name, { allowUids: [NOBODY] })
        worker = nobodyWorker(name, "--hub-uid=0")
        expect((await worker.waitLine(/^(ready|error) .*/))[0]).toBe(`ready ${worker.pid} ${NOBODY}`)
        await bus.waitForWorkers(1)
        expect(new TextDecoder().decode(await bus.call("squat"))).toBe("tauqs")
        expect(squatting.lines.filter((l) => l === "connected")).toEqual([])
        // the door is a socket file in a directory of root's; it goes when the hub stops listening
        const made = [...doorDirs()].filter((d) => !before.has(d)).map((d) => join("/tmp", d))
        const roots = [DOOR, ...made].filter(
          (d) => existsSync(d) && lstatSync(d).isDirectory() && lstatSync(d).uid === 0,
        )
        const door = roots.map((d) => join(d, `slotbus.${name}`)).filter((p) => existsSync(p))
        expect(door.length).toBe(1)
        // with the fixed name free the hub makes it its own; taken, a /tmp/slotbus-door-0.XXXXXX instead
        expect(door[0]!.startsWith(squat.startsWith("nothing") ? `${DOOR}/` : `${DOOR}.`)).toBe(true)
        await worker.kill()
        await bus.close()
        bus = undefined
        expect(existsSync(door[0]!)).toBe(false)
      } finally {
        await worker?.kill()
        await bus?.close()
        await squatting.kill()
        rmSync(DOOR, { recursive: true, force: true })
        rmSync(evil, { recursive: true, force: true })
        for (const d of doorDirs()) if (!before.has(d)) rmSync(join("/tmp", d), { recursive: true, force: true })
      }
    },
    30_000,
  )
})
