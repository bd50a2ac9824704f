// A nats-server of the test's own on 127.0.0.1, for the tests of workers over NATS (docs/PROTOCOL.md §10).
import { spawnSync } from "node:child_process"
import { afterAll, afterEach, beforeAll } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { type AddressInfo, connect as tcpConnect, createServer, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Msg, NatsConnection } from "@nats-io/transport-node"
import { findTool, spawn, until, type Child } from "./helpers.ts"

/** Why the NATS tests cannot run here, or null. Under .ci/run (SLOTBUS_REQUIRE_TOOLS=1) they run, and fail. */
export function natsSkipReason(): string | null {
  if (process.env.SLOTBUS_REQUIRE_TOOLS === "1") return null
  const server = findTool("nats-server")
  return server && spawnSync(server, ["--version"]).status === 0
    ? null
    : "no nats-server here (apt-get install -y nats-server)"
}

/**
 * Starts nats-server on a port of this test process's own and resolves once it takes connections. With
 * `jetstream`, it runs JetStream (-js) with a store in a temporary folder, removed when the server exits; with
 * `monitor`, its monitoring endpoint (-m: GET /varz, /connz) at `monitor`; with `port`, on that port (a server
 * started again where the last one was); with `store`, its JetStream store in that folder, kept when it exits
 * (the caller removes it), so a server started again there finds its streams. A server on a random port that
 * exits, or does not take connections, before it is ready (its port was taken meanwhile: a CI run once waited 10 s
 * for one) is ended and started again on another, 3 times in all; one on a given `port` fails at once, saying what
 * the server printed.
 */
export async function startNats(
  opts: { jetstream?: boolean; config?: string; monitor?: boolean; port?: number; store?: string } = {},
): Promise<{ url: string; server: Child; monitor: string; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? 20000 + ((process.pid * 7 + Math.floor(Math.random() * 1000)) % 20000)
    try {
      return await startNatsOn(port, opts)
    } catch (e) {
      if (opts.port !== undefined || attempt >= 3) throw e
    }
  }
}

/** Whether the NATS server answering on `port` is the one named `name` (its INFO line says so). */
function isOurs(port: number, name: string): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = ""
    const done = (ours: boolean, s?: { end(): void }) => (resolve(ours), s?.end()) // ending it calls close: after
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data(s, d) {
          seen += d.toString()
          if (seen.includes("\r\n")) done(seen.includes(`"server_name":"${name}"`), s)
        },
        close: () => done(false),
        error: () => done(false),
      },
    }).then(
      (s) => setTimeout(() => done(false, s), 1000).unref(),
      () => done(false),
    )
  })
}

async function startNatsOn(
  port: number,
  opts: { jetstream?: boolean; config?: string; monitor?: boolean; store?: string },
): Promise<{ url: string; server: Child; monitor: string; port: number }> {
  const dir = opts.store ?? mkdtempSync(join(tmpdir(), "slotbus-nats-"))
  const args: string[] = []
  if (opts.jetstream) args.push("-js", "-sd", dir)
  if (opts.config !== undefined) {
    writeFileSync(join(dir, "server.conf"), opts.config)
    args.push("-c", join(dir, "server.conf"))
  }
  const monitor = opts.monitor ? `http://127.0.0.1:${port + 20000}` : ""
  if (opts.monitor) args.push("-m", String(port + 20000))
  // named, so the wait below knows it from another listener that holds the port (the random port can be taken: a
  // test's connections then met that listener, timed out, then were refused once it went)
  const serverName = `slotbus-test-${process.pid}-${port}-${Math.random().toString(36).slice(2, 8)}`
  const server = spawn([
    findTool("nats-server") ?? "nats-server",
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
    "-n",
    serverName,
    ...args,
  ])
  if (opts.store === undefined) void server.exited.then(() => rmSync(dir, { recursive: true, force: true }))
  // (a server that exited ends the wait at once: whileAlive below has rejected for it)
  const ready = async () => {
    await until(() => !server.running || isOurs(port, serverName), "nats-server takes connections", 10_000)
    if (monitor)
      await until(
        () =>
          !server.running ||
          fetch(`${monitor}/varz`).then(
            (r) => r.ok,
            () => false,
          ),
        "nats-server's monitoring answers",
        10_000,
      )
  }
  try {
    await server.whileAlive(ready(), `nats-server on port ${port}`)
    if (!server.running) throw new Error(`nats-server on port ${port} exited as it started`)
  } catch (e) {
    await server.kill() // (its folder goes when it has exited)
    throw e
  }
  return { url: `nats://127.0.0.1:${port}`, server, monitor, port }
}

/**
 * A TCP relay to the nats-server at `url`, so one client's link can be cut while the others keep theirs: `cut()`
 * closes every connection through it and refuses new ones until `restore()`; `cutOn(text)` closes, once, the
 * connection whose client next sends a chunk containing `text` (dropped: a request lost at the moment it was sent),
 * and lets the client connect again; `holdAfter(text)` holds back what the server sends once a client sent `text` (its
 * answer on the wire, not lost) until the `release()` it returns; `close()` ends it.
 */
export async function natsRelay(url: string) {
  const { hostname, port } = new URL(url)
  const open = new Set<Socket>()
  let down = false
  let trigger: { text: string; cut: () => void } | undefined
  let holdOn: string | undefined
  let held: [Socket, Buffer][] | undefined
  const server = createServer((client) => {
    if (down) return void client.destroy()
    const upstream = tcpConnect(Number(port), hostname)
    for (const [s, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(s)
      s.on("error", () => {})
      s.on("close", () => (open.delete(s), other.destroy()))
    }
    upstream.on("data", (d: Buffer) => (held ? held.push([client, d]) : client.write(d)))
    client.on("data", (d: Buffer) => {
      if (trigger && d.toString("latin1").includes(trigger.text)) {
        const t = trigger
        trigger = undefined
        client.destroy()
        upstream.destroy()
        return t.cut()
      }
      upstream.write(d)
      if (holdOn && d.toString("latin1").includes(holdOn)) (holdOn = undefined), (held = [])
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const cut = () => {
    down = true
    for (const s of open) s.destroy()
  }
  return {
    url: `nats://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut,
    restore: () => void (down = false),
    /** Resolves when it has cut the connection that sent `text`. */
    cutOn: (text: string) => new Promise<void>((cut) => void (trigger = { text, cut })),
    holdAfter(text: string) {
      holdOn = text
      return {
        release() {
          for (const [to, d] of held ?? []) to.write(d)
          holdOn = held = undefined
        },
      }
    },
    close: () => new Promise<void>((resolve) => (cut(), server.close(() => resolve()))),
  }
}

/**
 * For a test file: a nats-server of its own (started before its tests unless `skip`, killed after them) at
 * `url`, and `cleanup`, what each test started, undone after it in reverse order.
 */
export function natsPerFile(
  skip: string | null,
  opts: { jetstream?: boolean; config?: string } = {},
): { readonly url: string; cleanup: (() => Promise<void>)[] } {
  const ctx = { url: "", cleanup: [] as (() => Promise<void>)[] }
  let server: Child | undefined
  beforeAll(async () => {
    if (!skip) ({ url: ctx.url, server } = await startNats(opts))
  })
  afterAll(async () => {
    await server?.kill()
  })
  afterEach(async () => {
    for (const f of ctx.cleanup.splice(0).reverse()) await f()
  })
  return ctx
}

/**
 * A hostile worker of bus `bus`: a plain NATS client that announces itself as worker `id` (every 50 ms) and
 * hands each request to `answer`, which may publish anything on its reply subject; `host` is the host it claims. `cancels` collects the cancels
 * it is sent. Undone by `stop()`, which also says it is leaving.
 */
export async function hostileNatsWorker(
  url: string,
  bus: string,
  answer: (reply: string, nc: NatsConnection, msg: Msg) => void,
  id = "hostile",
  host = "h",
) {
  const { connect } = await import("@nats-io/transport-node")
  const nc = await connect({ servers: url })
  const root = `slotbus.${bus.replaceAll(".", "~")}`
  const cancels: string[] = []
  nc.subscribe(`${root}.req.${id}`, { callback: (_, msg) => void (msg.reply && answer(msg.reply, nc, msg)) })
  nc.subscribe(`${root}.cancel.${id}`, { callback: (_, msg) => void cancels.push(msg.string()) })
  await nc.flush()
  const presence = (state: string) => JSON.stringify({ v: 1, worker: id, host, pid: 1, slots: 4, state })
  let state = "serving"
  const timer = setInterval(() => nc.publish(`${root}.hb`, presence(state)), 50)
  nc.publish(`${root}.hb`, presence(state))
  return {
    nc,
    cancels,
    /** From now on its presence (at once and every 50 ms) says `to`. */
    say(to: "serving" | "draining" | "leaving") {
      state = to
      nc.publish(`${root}.hb`, presence(state))
    },
    async stop() {
      clearInterval(timer)
      if (nc.isClosed()) return
      nc.publish(`${root}.hb`, presence("leaving"))
      await nc.close()
    },
  }
}
