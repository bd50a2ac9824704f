// bench/lib/child.ts, the child-process helper of the tests and the bench, with real processes and signals.
import { afterEach, expect, test } from "bun:test"
import { reapedChildrenCpuSeconds } from "../../bench/lib/child.ts"
import { rejection, run, spawn, stopAll } from "../support/helpers.ts"

afterEach(stopAll)

const bun = (script: string) => [process.execPath, "-e", script]

test("waitLine finds a line printed before or after the call, across chunk boundaries", async () => {
  const c = spawn(
    bun(`process.stdout.write("first\\nsec"); setTimeout(() => console.log("ond"), 50); setInterval(() => {}, 1000)`),
  )
  expect((await c.waitLine(/^sec(\w+)$/))[1]).toBe("ond")
  expect((await c.waitLine(/^first$/))[0]).toBe("first")
})

test("line(n) reads stdout line by line, waiting for lines not printed yet", async () => {
  const c = spawn(bun(`console.log("a"); setTimeout(() => console.log("b"), 50)`))
  expect([await c.line(0), await c.line(1)]).toEqual(["a", "b"])
  expect(((await rejection(c.line(2))) as Error).message).toContain("ended without printing line 2")
})

test("waitLine rejects with the child's stdout and stderr when it ends without the line", async () => {
  const c = spawn(bun(`console.log("out-text"); console.error("err-text"); process.exit(3)`))
  const e = (await rejection(c.waitLine(/^never$/))) as Error
  expect(e.message).toContain("ended without printing a line matching /^never$/")
  expect(e.message).toContain("out-text")
  expect(e.message).toContain("err-text")
  expect(await c.exited).toBe(3)
})

test("waitLine rejects after its timeout with what the child printed so far", async () => {
  const c = spawn(bun(`console.log("so far"); setInterval(() => {}, 1000)`))
  await c.waitLine(/^so far$/)
  const e = (await rejection(c.waitLine(/^never$/, 100))) as Error
  expect(e.message).toContain("nothing within 100ms: a line matching /^never$/")
  expect(e.message).toContain("so far")
})

test("stop() ends a child that handles SIGTERM with SIGTERM alone", async () => {
  const c = spawn(
    bun(
      `process.on("SIGTERM", () => { console.log("term"); process.exit(0) }); console.log("up"); setInterval(() => {}, 1000)`,
    ),
  )
  await c.waitLine(/^up$/)
  expect(await c.stop(10_000)).toBe(0)
  expect(c.lines).toContain("term")
  expect(c.proc.signalCode).toBeNull()
})

test("stop() SIGKILLs a child that ignores SIGTERM once the grace is over", async () => {
  const c = spawn(
    bun(`process.on("SIGTERM", () => console.log("ignored")); console.log("up"); setInterval(() => {}, 1000)`),
  )
  await c.waitLine(/^up$/)
  await c.stop(200)
  expect(c.lines).toContain("ignored")
  expect(c.proc.signalCode).toBe("SIGKILL")
  expect(c.running).toBe(false)
})

test("kill() is kill -9 and waits for the exit; signal() on an exited child does nothing", async () => {
  const c = spawn(bun(`process.on("SIGTERM", () => {}); console.log("up"); setInterval(() => {}, 1000)`))
  await c.waitLine(/^up$/)
  await c.kill()
  expect(c.proc.signalCode).toBe("SIGKILL")
  c.signal("SIGTERM")
  expect(c.running).toBe(false)
})

test("whileAlive rejects with the tail of stderr when the child exits before the work settles", async () => {
  const c = spawn(bun(`console.error("boom: no hub"); process.exit(4)`))
  const e = (await rejection(c.whileAlive(new Promise(() => {}), "the worker"))) as Error
  expect(e.message).toBe("the worker exited with 4: boom: no hub")
})

test("stopAll kills every child still running", async () => {
  const cs = [1, 2, 3].map(() => spawn(bun(`console.log("up"); setInterval(() => {}, 1000)`)))
  await Promise.all(cs.map((c) => c.waitLine(/^up$/)))
  await stopAll()
  expect(cs.map((c) => c.running)).toEqual([false, false, false])
})

test("run feeds stdin and returns the exit code and both outputs", async () => {
  const r = await run(
    bun(`const t = await Bun.stdin.text(); console.log(t.toUpperCase()); console.error("e"); process.exit(2)`),
    { stdin: "abc" },
  )
  expect(r).toMatchObject({ code: 2, stdout: "ABC\n", stderr: "e\n" })
  expect(r.cpuS).toBeGreaterThan(0) // its CPU too, from its resource usage
})

test("a child run() ran counts in reapedChildrenCpuSeconds, as a spawned one does: the bench's CPU, not others'", async () => {
  const before = reapedChildrenCpuSeconds()
  const r = await run(bun("const end = Date.now() + 300; while (Date.now() < end) {}"))
  expect(r.code).toBe(0)
  expect(r.cpuS).toBeGreaterThan(0.2)
  expect(reapedChildrenCpuSeconds() - before).toBeGreaterThanOrEqual(r.cpuS)
})
