// `slotbus hub` as a user runs it: a mistake on the command line is one line on stderr and a non-zero exit.
import { expect, test } from "bun:test"
import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"
import { spawn } from "../../bench/lib/child.ts"
import { run } from "../support/helpers.ts"

const BIN = join(import.meta.dir, "..", "..", "bin", "slotbus.ts")

async function hubCli(args: string[]) {
  return run([process.execPath, BIN, "hub", ...args])
}

test.each([
  [["--prot", "3200"], /^slotbus hub: unknown option '--prot'; run "slotbus hub --help" for the options$/],
  [["--port"], /^slotbus hub: option '--port <value>' argument missing; run/],
  [["--port", "abc"], /^slotbus hub: --port must be an integer in 0\.\.65535, got "abc"; run/],
  [["--port", "70000"], /^slotbus hub: --port must be an integer in 0\.\.65535, got 70000; run/],
  [["--timeout-ms", "-5"], /^slotbus hub: option '--timeout-ms' argument is ambiguous; run/],
  [["--timeout-ms=-5"], /^slotbus hub: --timeout-ms must be an integer ≥ 0, got "-5"; run/],
  [["extra"], /^slotbus hub: unexpected argument 'extra'; run/],
  // before: each of these two started a hub with one worker, or none, as if the flag were not there
  [
    ["--port", "0", "--spawn", "x", "--instances", "0"],
    /^slotbus hub: --instances must be an integer in 1\.\.1024, got 0; run/,
  ],
  [
    ["--port", "0", "--instances", "2"],
    /^slotbus hub: --instances counts the workers --spawn starts: give --spawn too; run/,
  ],
])("slotbus hub %j prints one line and exits 2", async (args, line) => {
  const r = await hubCli(args)
  expect(r.code).toBe(2)
  expect(r.stdout).toBe("")
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1)
  expect(r.stderr.trimEnd()).toMatch(line)
  expect(r.stderr).not.toContain("    at ")
})

test("slotbus hub on a port in use prints one line and exits 1", async () => {
  using taken = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() })
  const r = await hubCli([
    "--port",
    String(taken.port),
    "--token-file",
    join(import.meta.dir, `.unused-${process.pid}.token`),
  ])
  expect(r.code).toBe(1)
  expect(r.stdout).toBe("")
  expect(r.stderr).toBe(
    `slotbus hub: port ${taken.port} on 127.0.0.1 is in use; stop what holds it, or pick another with --port\n`,
  )
})

// it printed a 34-line stack trace (Bun) and left its token file behind
test("slotbus hub --spawn with a command that cannot start: one line, exit 2, the hub closed and its token file gone", async () => {
  const tokenFile = join(import.meta.dir, `.spawn-${process.pid}.token`)
  const r = await hubCli(["--port", "0", "--token-file", tokenFile, "--spawn", "/nonexistent/worker"])
  expect(r.code).toBe(2)
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1)
  expect(r.stderr).toStartWith("slotbus hub: --spawn: cannot start the command /nonexistent/worker: ")
  expect(r.stderr).not.toContain("    at ")
  expect(existsSync(tokenFile)).toBe(false)
})

test("slotbus hub --host 0.0.0.0 says it listens on 0.0.0.0 and its port, and how this host reaches it", async () => {
  const tokenFile = join(import.meta.dir, `.any-${process.pid}.token`)
  const hub = spawn([process.execPath, BIN, "hub", "--host", "0.0.0.0", "--port", "0", "--token-file", tokenFile])
  try {
    const [, port] = (await hub.waitLine(/^slotbus hub listening on http:\/\/0\.0\.0\.0:(\d+)$/))!
    await hub.waitLine(new RegExp(`^on every interface; from this host: http://127\\.0\\.0\\.1:${port}$`))
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)
  } finally {
    await hub.kill()
    rmSync(tokenFile, { force: true })
  }
})

test("slotbus hub --help prints the usage and exits 0", async () => {
  const r = await hubCli(["--help"])
  expect(r.code).toBe(0)
  expect(r.stdout).toStartWith("usage: slotbus hub")
})
