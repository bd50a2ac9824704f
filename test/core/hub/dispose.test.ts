// `await using` at the top level of a server module closes the bus as soon as the module has loaded.
import { afterEach, expect, test } from "bun:test"
import { bunChild, busName, type Child } from "../../support/helpers.ts"

const children: Child[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})
const env = { ...process.env, NODE_ENV: "production" } // bun test sets NODE_ENV=test, which silences the warning

test("a bus disposed by `await using` in a module whose Bun.serve keeps running prints one warning naming the right pattern", async () => {
  const server = bunChild("core/dispose-server.ts", [busName("dispose"), "server"], { env })
  children.push(server)
  const port = (await server.waitLine(/^port (\d+)$/))[1]
  const res = await fetch(`http://127.0.0.1:${port}/`)
  expect(res.status).toBe(503)
  expect(await res.text()).toContain(
    "`await using` closed it where its scope ended; in a server, keep it in a plain const",
  )
  await fetch(`http://127.0.0.1:${port}/`)
  const deadline = performance.now() + 5000
  while (!server.stderr.includes("slotbus:") && performance.now() < deadline) await Bun.sleep(20)
  const warnings = server.stderr.split("\n").filter((l) => l.startsWith("slotbus:"))
  expect(warnings).toHaveLength(1)
  expect(warnings[0]).toContain("const bus = await SlotBus.listen(…)")
  expect(warnings[0]).toContain("SIGTERM/SIGINT")
})

test("a script that ends after `await using` exits at once and warns nothing", async () => {
  const script = bunChild("core/dispose-server.ts", [busName("dispose"), "script"], { env })
  children.push(script)
  await script.waitLine(/^script done$/)
  expect(await script.proc.exited).toBe(0)
  expect(script.stderr).toBe("")
})
