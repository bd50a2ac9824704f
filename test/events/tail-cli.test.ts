// `slotbus tail <topic> [filter]` in its own process, fed by a publisher in a third one; this test process holds the
// topic open (an app that serves no status).
import { afterEach, describe, expect, test } from "bun:test"
import { closeSync, constants, openSync, readFileSync, readSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { run, spawn, stopAll, until, type Child } from "../support/helpers.ts"

const SLOTBUS = join(import.meta.dir, "..", "..", "bin", "slotbus.ts")
const EVENTS = join(import.meta.dir, "..", "..", "src", "events", "index.ts")

const topics: Topic[] = []
afterEach(async () => {
  await stopAll()
  for (const t of topics.splice(0)) await t.close()
})

const fresh = () => `tail-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

async function holder(name: string, capacity?: number): Promise<Topic> {
  const t = await Topic.open(name, capacity ? { capacity } : {})
  topics.push(t)
  return t
}

async function tail(args: string[]): Promise<Child> {
  const c = spawn([process.execPath, SLOTBUS, "tail", ...args])
  await until(() => c.stderr.includes("following"), "the tail to subscribe", 20_000)
  return c
}

/** Runs `code` (with `topic` open) in a process of its own: the third process, the publisher. */
function publisher(name: string, code: string) {
  const script = `import { Topic } from ${JSON.stringify(EVENTS)}
const topic = await Topic.open(${JSON.stringify(name)})
${code}
await topic.close()`
  return run([process.execPath, "-e", script], { timeoutMs: 60_000 })
}

describe("slotbus tail", () => {
  test("prints what a publisher in a third process publishes, with the topic's filter: a type prefix and a routing key", async () => {
    const name = fresh()
    await holder(name)
    const t = await tail([name, "job.*", "user=u1"])
    const pub = await publisher(
      name,
      `topic.publish({ type: "job.done", routing: { user: "u1" }, data: { n: 1 } })
topic.publish({ type: "job.done", routing: { user: "u2" }, data: "not for this tail" })
topic.publish({ type: "other.thing", routing: { user: "u1" }, data: "not for this tail either" })
topic.publish({ type: "job.blob", routing: { user: "u1", region: "eu" }, data: new Uint8Array([0, 1, 2, 255]) })
topic.publish({ type: "job.text", routing: { user: "u1" }, data: "two\\nlines" })`,
    )
    expect(pub.code).toBe(0)
    await until(() => t.lines.length >= 3, "three events printed")
    t.signal("SIGINT")
    expect(await t.exited).toBe(0)
    expect(t.lines).toHaveLength(3)
    expect(t.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} #\d+ job\.done user=u1 \{"n":1\}$/)
    expect(t.lines[1]).toMatch(/ job\.blob (user=u1 region=eu|region=eu user=u1) <4 bytes: 000102ff>$/)
    expect(t.lines[2]).toMatch(/ job\.text user=u1 two\\nlines$/)
    expect(t.output).not.toContain("not for this tail")
  })

  test("--json prints one JSON object per event: text when printable, base64 when not", async () => {
    const name = fresh()
    await holder(name)
    const t = await tail([name, "--json"])
    await publisher(
      name,
      `topic.publish({ type: "a", routing: { k: "v" }, data: "hi" })
topic.publish({ type: "b", data: new Uint8Array([255, 0]) })`,
    )
    await until(() => t.lines.length >= 2, "two events printed")
    t.signal("SIGTERM")
    expect(await t.exited).toBe(0)
    const [a, b] = t.lines.map((l) => JSON.parse(l))
    expect(a).toMatchObject({ type: "a", routing: { k: "v" }, bytes: 2, text: "hi" })
    expect(typeof a.time).toBe("string")
    expect(b).toMatchObject({ type: "b", routing: {}, bytes: 2, base64: "/wA=" })
  })

  test("another's control characters in types, routing keys and values and text data reach the terminal escaped (\\x1b), never raw", async () => {
    const name = fresh()
    await holder(name)
    const t = await tail([name])
    const j = await tail([name, "--json"])
    const pub = await publisher(
      name,
      `topic.publish({ type: "title\\x1b]0;owned\\x07", routing: { "k\\x1b[2J": "clip\\x1b]52;c;aGk=\\x07" }, data: "ok" })
topic.publish({ type: "csi", data: "\\u009b2J and \\u202eevil" })`,
    )
    expect(pub.code).toBe(0)
    await until(() => t.lines.length >= 2 && j.lines.length >= 2, "both events printed by both tails")
    t.signal("SIGTERM")
    j.signal("SIGTERM")
    expect(await t.exited).toBe(0)
    expect(await j.exited).toBe(0)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach the terminal
    for (const line of [...t.lines, ...j.lines]) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/)
    expect(t.lines[0]).toMatch(/ title\\x1b\]0;owned\\x07 k\\x1b\[2J=clip\\x1b\]52;c;aGk=\\x07 ok$/)
    expect(t.lines[1]).toMatch(/ csi \\x9b2J and \\u202eevil$/)
    // JSON stays exact: what it decodes to is what was published
    const [a, b] = j.lines.map((l) => JSON.parse(l))
    expect(a).toMatchObject({ type: "title\x1b]0;owned\x07", routing: { "k\x1b[2J": "clip\x1b]52;c;aGk=\x07" } })
    expect(b).toMatchObject({ type: "csi", text: "\u009b2J and \u202eevil" })
  })

  test("a tail that reads nothing never holds the publisher back: it is lapped, and says how many events it missed", async () => {
    const name = fresh()
    const topic = await holder(name, 64 * 1024)
    const t = await tail([name, "--queue", "64"])
    t.signal("SIGSTOP")
    try {
      // 4 MiB through a 64 KiB ring while the tail is stopped: the publisher finishes without waiting for it
      const pub = await publisher(
        name,
        `for (let i = 0; i < 4096; i++) topic.publish({ type: "fill", data: "x".repeat(1000) })`,
      )
      expect(pub.code).toBe(0)
      expect(topic.stats().subscribers.some((s) => s.pid === t.pid)).toBe(true)
    } finally {
      t.signal("SIGCONT")
    }
    await until(() => /fell behind: \d+ events missed/.test(t.stderr), "the tail to report what it missed")
    t.signal("SIGTERM")
    expect(await t.exited).toBe(0)
    const missed = [...t.stderr.matchAll(/fell behind: (\d+) events missed/g)].reduce((n, m) => n + Number(m[1]), 0)
    expect(missed + t.lines.length).toBeLessThanOrEqual(4096)
    expect(missed).toBeGreaterThan(0)
    // it left: its subscriber entry is gone from the topic
    await until(() => !topic.stats().subscribers.some((s) => s.pid === t.pid), "the tail's entry to go")
  }, 60_000)

  test("a tail whose stdout is a pipe nobody reads waits for it, its memory bounded, and counts the events it skipped meanwhile", async () => {
    const name = fresh()
    await holder(name)
    // a real pipe (a FIFO) that this test holds open and does not read, as `| less` waiting does
    const fifo = join(tmpdir(), `${name}.fifo`)
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0)
    const rd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
    const wr = openSync(fifo, "w")
    const proc = Bun.spawn([process.execPath, SLOTBUS, "tail", name], { stdout: wr, stderr: "pipe" })
    closeSync(wr)
    let stderr = ""
    const errDone = (async () => {
      for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk)
    })()
    let read = 0
    const drain = () => {
      const buf = Buffer.alloc(1 << 20)
      for (;;)
        try {
          const n = readSync(rd, buf)
          if (n === 0) return
          read += n
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EAGAIN") return
          throw e
        }
    }
    try {
      await until(() => stderr.includes("following"), "the tail to subscribe", 20_000)
      // 6 s of 1 KB events: the tail's lines would be hundreds of MiB (the old tail buffered them: 430-798 MiB RSS)
      const pub = await publisher(
        name,
        `const data = "x".repeat(1000)
const end = performance.now() + 6000
let n = 0
while (performance.now() < end) {
  topic.publish({ type: "flood", data })
  if (++n % 256 === 0) await Bun.sleep(0)
}
console.log(n)`,
      )
      expect(pub.code).toBe(0)
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))![1]) * 1024
      expect(hwm).toBeLessThan(128 * 1024 * 1024)
      // now read: what waited in its queue comes out, then what the ring skipped for it, counted
      await until(
        () => (drain(), /fell behind: \d+ events missed/.test(stderr)),
        "the tail to count what it skipped",
        30_000,
      )
      const published = Number(pub.stdout.trim())
      const missed = [...stderr.matchAll(/fell behind: (\d+) events missed/g)].reduce((n, m) => n + Number(m[1]), 0)
      expect(missed).toBeGreaterThan(0)
      expect(missed).toBeLessThanOrEqual(published)
      expect(read).toBeGreaterThan(0)
    } finally {
      proc.kill("SIGKILL")
      await proc.exited
      await errDone
      closeSync(rd)
      rmSync(fifo, { force: true })
    }
  }, 90_000)

  test("a tail whose stdout takes everything at once (> /dev/null) under a full-speed publisher keeps its memory bounded", async () => {
    const name = fresh()
    const topic = await holder(name)
    const out = openSync("/dev/null", "w")
    const proc = Bun.spawn([process.execPath, SLOTBUS, "tail", name], { stdout: out, stderr: "pipe" })
    closeSync(out)
    let stderr = ""
    const errDone = (async () => {
      for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk)
    })()
    const script = `import { Topic } from ${JSON.stringify(EVENTS)}
const topic = await Topic.open(${JSON.stringify(name)})
const data = "x".repeat(200)
for (let n = 1; ; n++) {
  topic.publish({ type: "flood", data })
  if (n % 4096 === 0) await Bun.sleep(0)
}`
    const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))![1]) * 1024
    const printed = () => topic.stats().subscribers.find((s) => s.pid === proc.pid)?.received ?? 0
    let pub: Child | undefined
    try {
      await until(() => stderr.includes("following"), "the tail to subscribe", 20_000)
      pub = spawn([process.execPath, "-e", script])
      // 600 000 events printed: the old tail kept every event it printed, held by a race against its stop per event
      // (~1 KiB each: 157 MiB after 150 000, 447 MiB after 20 s on a quiet machine)
      await until(() => printed() >= 600_000 || hwm() >= 150 << 20, "600 000 events printed", 120_000)
      expect(hwm()).toBeLessThan(150 << 20)
      expect(printed()).toBeGreaterThanOrEqual(600_000)
    } finally {
      await pub?.kill()
      proc.kill("SIGKILL")
      await proc.exited
      await errDone
    }
  }, 150_000)

  test("a topic that is not open exits 1 saying so, and makes no topic", async () => {
    const name = fresh()
    const r = await run([process.execPath, SLOTBUS, "tail", name], { timeoutMs: 30_000 })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`no topic named "${name}" is open on this host`)
    await expect(Topic.open(name, { create: "never", timeoutMs: 200 })).rejects.toThrow()
  })

  // it exited 1 (a failure past the arguments) saying "got NaN" for a value that was no number
  test.each(["abc", "0", "1e12", "-5"])("--queue=%s is a usage mistake: exit 2 naming the value", async (value) => {
    const r = await run([process.execPath, SLOTBUS, "tail", fresh(), `--queue=${value}`], { timeoutMs: 30_000 })
    expect(r.code).toBe(2)
    expect(r.stderr).toStartWith(`slotbus tail: --queue must be an integer in 1..1048576, got `)
    expect(r.stderr.split("\n")[0]).toContain(value)
  })
})
