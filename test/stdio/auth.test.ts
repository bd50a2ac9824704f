// Who may drive the workers: on TCP (which any local user can reach) only a client that first sends the token
// from the listener's 0600 file; on a unix socket only users the socket file's mode lets in.
import { describe, expect, test } from "bun:test"
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { socketDirectory } from "../../src/native/socket-dir.ts"
import { BusErrorCode, formatAddress } from "../../src/stdio/index.ts"
import { findTool, freePort, REPO, run, until } from "../support/helpers.ts"
import { clientOf, rawClient, withBus, workerConfig } from "../support/stdio/stdio.ts"
import { asNobody, NOBODY, whyNotAsNobody } from "../support/uid.ts"

const rpc = (m: object) => JSON.stringify({ jsonrpc: "2.0", ...m })

/** A second local user to try things as: created when missing and we may (root); null otherwise. */
async function otherUser(): Promise<string | null> {
  if ((await run(["id", "tester"])).code === 0) return "tester"
  if (process.getuid?.() !== 0) return null
  return (await run(["useradd", "-M", "tester"])).code === 0 ? "tester" : null
}

/** What a client run as `user` gets when it connects to `address` and sends one request without a token. */
const CLIENT = `
const [address, tokenFile] = process.argv.slice(2)
const out = { connect: "", answer: null, closed: false, tokenRead: "" }
try { require("node:fs").readFileSync(tokenFile, "utf8"); out.tokenRead = "read it" } catch (e) { out.tokenRead = e.code }
let text = ""
const done = Promise.withResolvers()
const handlers = { data(_s, c) { text += new TextDecoder().decode(c) }, close() { out.closed = true; done.resolve() }, error() { done.resolve() } }
try {
  const s = address.startsWith("unix:") ? await Bun.connect({ unix: address.slice(5), socket: handlers })
    : await Bun.connect({ hostname: "127.0.0.1", port: Number(address.split(":")[2]), socket: handlers })
  out.connect = "ok"
  s.write(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "pwned" }) + "\\n")
  await Promise.race([done.promise, Bun.sleep(3000)])
  s.terminate()
} catch (e) { out.connect = e.code ?? String(e) }
out.answer = text.split("\\n").filter(Boolean).map((l) => JSON.parse(l))
console.log(JSON.stringify(out))
`

describe("stdio listener authentication", () => {
  test("a TCP listener writes its token to a 0600 file; a client must send it first, or it is refused and reaches no worker", async () => {
    await withBus(workerConfig(), async (bus) => {
      const l = await bus.listen("tcp:127.0.0.1:0")
      const st = statSync(l.tokenFile!)
      expect(st.mode & 0o777).toBe(0o600)
      expect(st.uid).toBe(process.getuid!())
      const address = formatAddress(l.address)
      for (const first of [
        rpc({ id: 1, method: "pwned" }),
        rpc({ method: "slotbus/auth", params: { token: "guess" } }),
        "{not json",
      ]) {
        const c = await rawClient(address)
        c.send(first)
        c.send(rpc({ id: 2, method: "pwned" }))
        await c.closed
        expect(c.received).toEqual([
          {
            jsonrpc: "2.0",
            id: null,
            error: {
              code: BusErrorCode.InvalidRequest,
              message: expect.stringContaining("authentication failed"),
              data: { disconnected: true },
            },
          },
        ])
      }
      expect(bus.stats().messagesOut).toBe(0)
      const ok = await clientOf(l)
      ok.send(rpc({ id: 3, method: "fine" }))
      expect((await ok.waitFor((m) => m.id === 3, "the answer")).result.method).toBe("fine")
      ok.close()
      const file = l.tokenFile!
      await bus.stop()
      expect(() => statSync(file)).toThrow() // the token goes with the listener
    })
  })

  test("a TCP connection that never authenticates is cut off after lineTimeoutMs and frees its place", async () => {
    await withBus(workerConfig(), async (bus) => {
      const l = await bus.listen("tcp:127.0.0.1:0", { lineTimeoutMs: 200, maxClients: 1 })
      const idle = await rawClient(formatAddress(l.address))
      await idle.closed
      expect(idle.received[0].error.message).toContain("authentication failed")
      await until(() => l.clientCount === 0, "its place freed")
      const ok = await clientOf(l)
      ok.send(rpc({ id: 1, method: "fine" }))
      expect((await ok.waitFor((m) => m.id === 1, "the answer")).result.method).toBe("fine")
      ok.close()
    })
  })

  test("another local user can neither drive the workers over TCP nor read the token, nor connect to the unix socket", async () => {
    const user = await otherUser()
    if (!user)
      throw new Error("this test needs a second local user: run it as root, or create one with useradd -M tester")
    const dir = mkdtempSync(join(tmpdir(), "stdio-auth-"))
    chmodSync(dir, 0o755)
    const script = join(dir, "client.ts")
    writeFileSync(script, CLIENT, { mode: 0o644 })
    try {
      await withBus(workerConfig(), async (bus) => {
        const tcp = await bus.listen("tcp:127.0.0.1:0")
        const unix = await bus.listen(`unix:${join(dir, "bus.sock")}`)
        const as = (args: string[]) =>
          run([findTool("runuser") ?? "runuser", "-u", user, "--", process.execPath, ...args], {
            env: { ...process.env, HOME: dir },
          })
        const viaTcp = JSON.parse((await as([script, formatAddress(tcp.address), tcp.tokenFile!])).stdout)
        expect(viaTcp.tokenRead).toBe("EACCES")
        expect(viaTcp.answer).toEqual([
          {
            jsonrpc: "2.0",
            id: null,
            error: {
              code: BusErrorCode.InvalidRequest,
              message: expect.stringContaining("authentication failed"),
              data: { disconnected: true },
            },
          },
        ])
        expect(viaTcp.closed).toBe(true)
        const viaUnix = JSON.parse((await as([script, formatAddress(unix.address), tcp.tokenFile!])).stdout)
        expect(viaUnix.connect).not.toBe("ok")
        // The bridge a stdio-only client would spawn refuses too, saying why.
        const bridge = await as([join(REPO, "bin", "slotbus.ts"), "stdio", "connect", formatAddress(tcp.address)])
        expect(bridge.code).toBe(1)
        expect(bridge.stderr).toContain("token")
        expect(bus.stats().messagesOut).toBe(0)
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test.skipIf(whyNotAsNobody(import.meta.path) !== null)(
    "another uid's file at /tmp/slotbus-stdio-<port>.token does not stop a TCP listener: its token goes in the socket directory, where connect finds it",
    async () => {
      const port = await freePort()
      const squatted = `/tmp/slotbus-stdio-${port}.token`
      const xdg = process.env.XDG_RUNTIME_DIR
      delete process.env.XDG_RUNTIME_DIR
      try {
        expect(Bun.spawnSync(asNobody(["sh", "-c", `echo guess > ${squatted}`])).exitCode).toBe(0)
        await withBus(workerConfig(), async (bus) => {
          const l = await bus.listen(`tcp:127.0.0.1:${port}`)
          expect(dirname(l.tokenFile!)).toBe(await socketDirectory())
          const r = await run(
            [process.execPath, join(REPO, "bin", "slotbus.ts"), "stdio", "connect", formatAddress(l.address)],
            { stdin: rpc({ id: 9, method: "sleep", params: { ms: 10, tag: "bridged" } }) + "\n" },
          )
          expect(JSON.parse(r.stdout)).toMatchObject({ id: 9, result: { slept: 10 } })
        })
        expect(statSync(squatted).uid).toBe(NOBODY) // left as it was
      } finally {
        if (xdg !== undefined) process.env.XDG_RUNTIME_DIR = xdg
        rmSync(squatted, { force: true })
      }
    },
  )

  test("slotbus stdio connect reads the token and bridges a TCP listener for this user", async () => {
    await withBus(workerConfig(), async (bus) => {
      const l = await bus.listen("tcp:127.0.0.1:0")
      const r = await run(
        [process.execPath, join(REPO, "bin", "slotbus.ts"), "stdio", "connect", formatAddress(l.address)],
        { stdin: rpc({ id: 9, method: "sleep", params: { ms: 200, tag: "bridged" } }) + "\n" },
      )
      expect(JSON.parse(r.stdout)).toMatchObject({ id: 9, result: { slept: 200 } }) // answered after stdin ended: the bridge half-closes
    })
  })
})
