// `slotbus hub` started by npm (`npm run hub`, `npx slotbus hub`): npm passes a SIGTERM to its `sh -c` alone, and
// dash dies of it without passing it on. The hub, reparented, stops as on SIGTERM (its port free); a hub started
// otherwise (`nohup slotbus hub &` from a shell that then exits) runs on. A SIGHUP to npm kills npm alone, its sh
// waiting on under init: the hub stops then too. Under Bun and Node (the CLI runs on both).
import { afterAll, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { libraryPath } from "../../src/native/lib-path.ts"
import { alive, FIXTURES, freePort, spawn, until } from "../support/helpers.ts"
import { buildForNode, findNode, nodeFlags } from "../support/runtime/node.ts"
import { type PeerRuntime, peerSkip } from "../support/runtime/peers.ts"

const dir = mkdtempSync(join(tmpdir(), "hub-npm-parent-"))
let built: ReturnType<typeof buildForNode> | undefined
afterAll(() => {
  built?.remove()
  rmSync(dir, { recursive: true, force: true })
})

/** The hub's command line under `runtime` (the CLI's hub command, as bin/slotbus.ts runs it), quoted for sh. */
function hubCommand(runtime: PeerRuntime, port: number, tokenFile: string): string {
  const args = ["--port", String(port), "--token-file", tokenFile]
  let cmd = [process.execPath, join(FIXTURES, "http", "http-hub.ts"), ...args]
  if (runtime === "node") {
    const node = findNode()!
    built ??= buildForNode("http/http-hub.ts")
    cmd = [node, ...nodeFlags(node), built.entry, ...args]
  }
  return cmd.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ")
}

/** Starts the hub under `sh -c` (what npm runs a script with): the sh, and the hub's pid (the sh's one child). */
async function hubUnderSh(runtime: PeerRuntime, npm: boolean) {
  const port = await freePort()
  const env: Record<string, string | undefined> = {
    ...process.env,
    SLOTBUS_LIB: await libraryPath(),
    NODE_NO_WARNINGS: "1",
    npm_command: npm ? "run" : undefined,
    npm_lifecycle_event: npm ? "hub" : undefined,
  }
  const sh = spawn(["/bin/sh", "-c", hubCommand(runtime, port, join(dir, `${runtime}-${port}.token`))], { env })
  await sh.waitLine(/listening on http:\/\/127\.0\.0\.1:\d+/, 30_000)
  // the premise: the sh did not exec the hub (dash does not), so a SIGTERM to it does not reach the hub
  const children = readFileSync(`/proc/${sh.pid}/task/${sh.pid}/children`, "utf8").trim().split(" ")
  expect(children).toHaveLength(1)
  return { sh, port, pid: Number(children[0]) }
}

/**
 * Starts the hub as npm does: a stand-in for npm (a JavaScript process with no SIGHUP listener, as npm has none)
 * runs `sh -c <hub>`. The stand-in, and the hub's pid (the sh's one child).
 */
async function hubUnderNpm(runtime: PeerRuntime) {
  const port = await freePort()
  const env: Record<string, string | undefined> = {
    ...process.env,
    SLOTBUS_LIB: await libraryPath(),
    NODE_NO_WARNINGS: "1",
    npm_command: "exec",
    SLOTBUS_TEST_SH: hubCommand(runtime, port, join(dir, `${runtime}-${port}-npm.token`)),
  }
  const npmCode = `require("node:child_process").spawn("/bin/sh", ["-c", process.env.SLOTBUS_TEST_SH], { stdio: "inherit" })`
  const npm = spawn([process.execPath, "-e", npmCode], { env })
  await npm.waitLine(/listening on http:\/\/127\.0\.0\.1:\d+/, 30_000)
  const children = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ")
  const [sh] = children(npm.pid)
  expect(children(npm.pid)).toHaveLength(1)
  expect(children(Number(sh))).toHaveLength(1)
  return { npm, port, sh: Number(sh), pid: Number(children(Number(sh))[0]) }
}

/** Whether the process ran to its end (gone, or a zombie its new parent has not reaped yet). */
function ended(pid: number): boolean {
  if (!alive(pid)) return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    return true
  }
}

/** Whether this process can listen on 127.0.0.1:`port` (nothing holds it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once("error", () => resolve(false))
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)))
  })
}

test.each(["bun", "node"] as PeerRuntime[])(
  "%s: SIGTERM to the sh npm started slotbus hub with stops the hub, its port free; without npm it runs on",
  async (runtime) => {
    if (peerSkip(runtime)) return console.log(`skipped: ${peerSkip(runtime)}`)
    const npm = await hubUnderSh(runtime, true)
    const plain = await hubUnderSh(runtime, false)
    try {
      npm.sh.signal("SIGTERM")
      plain.sh.signal("SIGTERM")
      await Promise.all([npm.sh.proc.exited, plain.sh.proc.exited])
      expect([npm.sh.proc.signalCode, plain.sh.proc.signalCode]).toEqual(["SIGTERM", "SIGTERM"])
      // before the fix it ran on under init, the port held
      await until(() => ended(npm.pid), "the hub npm started stopped", 20_000)
      const said =
        /^slotbus hub: started by npm, npx or bunx, and its parent \(pid \d+\) is gone: stopping as on SIGTERM$/m
      await until(() => said.test(npm.sh.stderr), "the hub said why it stopped")
      expect(await portFree(npm.port)).toBe(true)
      // the other, started as `nohup slotbus hub &` is, runs on past its parent's once-a-second look
      await Bun.sleep(1500)
      expect(ended(plain.pid)).toBe(false)
      expect(await portFree(plain.port)).toBe(false)
      process.kill(plain.pid, "SIGTERM")
      await until(() => ended(plain.pid), "the other hub stopped on SIGTERM", 20_000)
    } finally {
      for (const pid of [npm.pid, plain.pid]) if (!ended(pid)) process.kill(pid, "SIGKILL")
      await npm.sh.kill()
      await plain.sh.kill()
    }
  },
  60_000,
)

test.each(["bun", "node"] as PeerRuntime[])(
  "%s: SIGHUP to npm, which dies of it and leaves its sh -c waiting, stops the hub npm started, its port free",
  async (runtime) => {
    if (peerSkip(runtime)) return console.log(`skipped: ${peerSkip(runtime)}`)
    const { npm, port, sh, pid } = await hubUnderNpm(runtime)
    try {
      npm.signal("SIGHUP")
      await npm.proc.exited
      expect(npm.proc.signalCode).toBe("SIGHUP")
      // before the fix it ran on, its sh waiting under init, the port held
      await until(() => ended(pid), "the hub npm started stopped", 20_000)
      const said = new RegExp(
        `^slotbus hub: started by npm or npx \\(pid ${npm.pid}\\), which is gone \\(its sh -c, pid ${sh}, waits on\\): stopping as on SIGTERM$`,
        "m",
      )
      await until(() => said.test(npm.stderr), "the hub said why it stopped")
      expect(await portFree(port)).toBe(true)
      await until(() => ended(sh), "its sh ended with it", 20_000)
    } finally {
      if (!ended(pid)) process.kill(pid, "SIGKILL")
      if (!ended(sh)) process.kill(sh, "SIGKILL")
      await npm.kill()
    }
  },
  60_000,
)
