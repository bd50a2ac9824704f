// A front run by systemd as Type=notify (docs/api.md, "Running under systemd") tells its manager READY=1 once its
// pool's workers joined: one datagram to the real unix socket $NOTIFY_SOCKET (test/support/core/notify-listener.py binds
// it, a path or an abstract name), sent by the front itself, the process systemd credits under NotifyAccess=main.
import { afterEach, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { notifySystemd } from "../../../src/index.ts"
import { busName, type Child, FIXTURES, spawn } from "../../support/helpers.ts"
import { frontChild } from "../../support/core/front-child.ts"

const children: Child[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function listener(addr: string): Promise<Child> {
  const l = spawn(["python3", join(FIXTURES, "core/notify-listener.py"), addr])
  children.push(l)
  await l.waitLine(/^bound$/, 20_000)
  return l
}

test.each(["a path", "an abstract name"])(
  "a front tells the NOTIFY_SOCKET at %s READY=1 from its own pid once its workers joined",
  async (kind) => {
    const dir = mkdtempSync(join(tmpdir(), "sd-notify-"))
    dirs.push(dir)
    const addr = kind === "a path" ? join(dir, "notify") : `@slotbus-test-notify-${process.pid}-${dirs.length}`
    const l = await listener(addr)
    const name = busName("notify")
    const prev = process.env.NOTIFY_SOCKET
    process.env.NOTIFY_SOCKET = addr // the front inherits it, as systemd's child does
    let f: Awaited<ReturnType<typeof frontChild>>
    try {
      f = await frontChild(name, ["--plain", "--pool=2", "--notify"], children)
    } finally {
      if (prev === undefined) delete process.env.NOTIFY_SOCKET
      else process.env.NOTIFY_SOCKET = prev
    }
    await f.child.waitLine(/^notified true$/, 30_000)
    const [, pid, text] = (await l.waitLine(/^got (\d+) (.*)$/, 20_000)) as string[]
    expect(text).toBe("READY=1")
    expect(Number(pid)).toBe(f.child.pid)
  },
  60_000,
)

test("without NOTIFY_SOCKET (not under systemd) notifySystemd sends nothing and says so", async () => {
  const prev = process.env.NOTIFY_SOCKET
  delete process.env.NOTIFY_SOCKET
  try {
    expect(await notifySystemd("READY=1")).toBe(false)
  } finally {
    if (prev !== undefined) process.env.NOTIFY_SOCKET = prev
  }
})

test.each([
  ["an empty state", ""],
  ["a state with a NUL", "READY=1\0"],
  ["a state past 4096 bytes", "x".repeat(4097)],
])("notifySystemd refuses %s with a TypeError", async (_, state) => {
  await expect(notifySystemd(state)).rejects.toThrow(TypeError)
})

test("a NOTIFY_SOCKET whose queue is full neither freezes the event loop nor hangs notifySystemd: it rejects with NotifyQueueFullError", async () => {
  const addr = `@slotbus-test-notify-full-${process.pid}`
  const full = spawn(["python3", join(FIXTURES, "core/notify-listener.py"), addr, "--full"])
  children.push(full)
  await full.waitLine(/^full$/, 20_000)
  const n = spawn([process.execPath, join(FIXTURES, "core/notifier.ts"), "READY=1"], {
    env: { ...process.env, NOTIFY_SOCKET: addr },
  })
  children.push(n)
  await n.waitLine(/^calling$/, 20_000)
  const from = n.lines.indexOf("calling")
  const settled = await n.waitLine(/^settled (.*)$/, 20_000)
  expect(settled[1]).toStartWith("NotifyQueueFullError: ")
  // the timer kept firing while the call was out
  const during = n.lines.slice(from, n.lines.indexOf(settled[0]))
  expect(during.some((l) => l.startsWith("tick "))).toBe(true)
  expect(await n.exited).toBe(0)
}, 60_000)
