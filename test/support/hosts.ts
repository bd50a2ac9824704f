// Two hosts on one machine, for the tests of workers across hosts on NATS (issue 21, docs/PROTOCOL.md §10).
//
// Host A is this machine as the test sees it (the root network namespace). Host B is a network namespace of its
// own, joined to host A by a veth pair on a private /30 in 10.213.0.0/16: A's end is <block>.1, B's <block>.2.
// Host B has a socket directory of its own (docs/PROTOCOL.md §1.1: every process started on B gets
// SLOTBUS_SOCKET_DIR, a 0700 folder of B's), so no slotbus name of A's is reachable from B, and a /dev/shm of its
// own (each process started on B bind-mounts B's folder there); the rest of the file system (this checkout, bun,
// /tmp) stays shared, since B runs this checkout's code. slotbus's shared memory is memfds passed over the socket
// files of that directory, so nothing of slotbus's crosses from A to B but what NATS carries.
//
// Each host runs its own nats-server, bound to its veth address only (client port, route port and the HTTP
// monitor), and the two are one cluster (--cluster_name, --cluster, --routes to each other); with
// `jetstream: true` each also runs JetStream with a store in the temporary folder. NATS's default of
// advertising the cluster's client URLs stays on: a client given one server learns the other.
//
// Usage (always close, also when the test fails: afterAll or `await using`):
//
//   const skip = hostsSkipReason()                    // not root, no nats-server, no ip, no netns here
//   describe.skipIf(skip !== null)("…", () => {
//     let hosts: Hosts
//     beforeAll(async () => (hosts = await openHosts()), 30_000)
//     afterAll(() => hosts?.close())
//     test("…", async () => {
//       const w = hosts.spawnOnB([process.execPath, "worker.ts", hosts.b.natsUrl])   // a process on host B
//       await hosts.killNats("b")                       // kill -9 of host B's nats-server
//       await hosts.restartNats("b")                    // back, route up again
//     })
//   })
//
// openHosts cleans up what it made if it fails half-way; close() is idempotent; whatever is still open when the
// test process exits is removed by an exit handler. A run killed by a signal cannot clean up: the next openHosts
// removes the leftovers of dead test processes (names carry the pid), as does `bun test/support/hosts.ts --clean`,
// and scripts/leftovers.ts fails CI on any it finds. Waits are bounded (timeoutMs) and fail naming what did not
// happen, with the tail of the server's log; nothing here asserts a duration.
import { afterAll, afterEach, beforeAll } from "bun:test"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Subprocess } from "bun"
import { spawn, type Child, type SpawnOptions } from "../../bench/lib/child.ts"
import { findTool } from "./helpers.ts"

export type HostName = "a" | "b"

export interface HostsOptions {
  /** Run both servers with JetStream (-js), each with a store in the temporary folder. Default false. A cluster
   * of two has a JetStream quorum of two: while one server is down, JetStream's API is unavailable, and
   * restartNats waits for the leader election that follows (about 5 s with nats-server 2.9). */
  jetstream?: boolean
  /** Bound on each wait: a server accepting clients, the route between them, the JetStream leader. Default 15 s. */
  timeoutMs?: number
  /** The nats-server binary. Default: nats-server on PATH, or /usr/sbin/nats-server (the Debian package). */
  natsServer?: string
}

export interface Host {
  /** The host's veth address: its nats-server listens here only. */
  readonly addr: string
  /** nats://addr:port, for clients on either host. */
  readonly natsUrl: string
  /** http://addr:port of the server's monitor (/varz, /routez, /healthz, /jsz …). */
  readonly monitorUrl: string
  /** The server's --server_name (what a client sees as `info.server_name`). */
  readonly serverName: string
  /** The server's log (nats-server -l), appended to across restarts. */
  readonly logFile: string
}

export interface HostB extends Host {
  /** The network namespace: `ip netns exec <netns> …` runs a command on host B. */
  readonly netns: string
}

export interface Hosts extends AsyncDisposable {
  readonly a: Host
  readonly b: HostB
  /** The cluster's name, `slotbus-<pid>-<n>`: the netns, the servers and the temporary folder are named after it. */
  readonly name: string
  /** The temporary folder: logs, JetStream stores, host B's /dev/shm. */
  readonly dir: string
  /** Host A's end of the veth pair (`sb<pid>-<n>a`; B's ends in b): `ip link set <veth> down` cuts the network
   * between the hosts, `up` mends it. */
  readonly veth: string
  /** Starts `cmd` on host B (in its netns, with its /dev/shm), as bench/lib/child.ts's spawn does on host A
   * (stopAll ends it too); close() kills it if it still runs. */
  spawnOnB(cmd: string[], opts?: SpawnOptions): Child
  /** Whether that host's nats-server runs. */
  natsRunning(host: HostName): boolean
  /** kill -9 of that host's nats-server; resolves once it exited. */
  killNats(host: HostName): Promise<void>
  /** Starts that host's nats-server again (kill -9 first if it still runs), same address, ports and store, and
   * waits until it accepts clients and, if the other server runs, the route is up again (and with JetStream,
   * both know the leader). */
  restartNats(host: HostName): Promise<void>
  /** Kills every process started here (servers, spawnOnB's and anything else left in host B's netns), deletes
   * the veth pair and the netns and removes the temporary folder. Idempotent. */
  close(): Promise<void>
}

// Names, all carrying the pid of the test process that made them, so a dead one's leftovers can be found and a
// live one's are left alone. scripts/leftovers.ts looks for these same patterns.
const NETNS = /^slotbus-(\d+)-(\d+)$/ // netns, cluster name; servers are <name>-a and <name>-b
const VETH = /^sb(\d+)-(\d+)a$/ // host A's end of the veth pair; host B's is the same with "b"
const TMP = /^slotbus-hosts-(\d+)-(\d+)-/ // the temporary folder in os.tmpdir()
const NATS_NAME = /--server_name slotbus-(\d+)-\d+-[ab]\b/ // in a nats-server's command line

const NATS_INSTALL = "apt-get install -y nats-server"
const IP_INSTALL = "apt-get install -y iproute2"
/** Host B's fixed ports: the netns is its own, nothing else listens there. Host A's are probed (below). */
const B_PORTS = { client: 4222, cluster: 6222, monitor: 8222 }

/** A tool on PATH or where Debian puts it (root's PATH has /usr/sbin, a user's may not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

let probed: string | null | undefined

/**
 * Why two hosts cannot be made here, or null: not root, no nats-server, no `ip`, or network namespaces refused
 * (a container without CAP_SYS_ADMIN), each with the command that fixes it. With SLOTBUS_REQUIRE_TOOLS=1
 * (.ci/run sets it) always null: the tests then run and fail, so CI runs every one.
 */
export function hostsSkipReason(): string | null {
  if (process.env.SLOTBUS_REQUIRE_TOOLS === "1") return null
  if (probed !== undefined) return probed
  probed = whyNot()
  return probed
}

function whyNot(): string | null {
  if (process.getuid?.() !== 0)
    return `needs root to create a network namespace and a veth pair (running as uid ${process.getuid?.()}): run the tests as root, e.g. sudo bun test`
  const missing = [
    findTool("nats-server") ? null : "nats-server",
    findTool("ip") && findTool("mount") ? null : "iproute2",
  ].filter((m) => m !== null)
  if (missing.length) return `needs ${missing.join(" and ")}: apt-get install -y ${missing.join(" ")}`
  // Root in a container may still be refused a netns: try one (the name of no openHosts: n starts at 1).
  const ip = findTool("ip")!
  const ns = `slotbus-${process.pid}-0`
  const add = Bun.spawnSync([ip, "netns", "add", ns], { stderr: "pipe" })
  if (add.exitCode !== 0)
    return `cannot create a network namespace here (ip netns add: ${add.stderr.toString().trim()}): run as root with CAP_SYS_ADMIN and CAP_NET_ADMIN (e.g. docker run --privileged)`
  Bun.spawnSync([ip, "netns", "del", ns], { stderr: "pipe" })
  return null
}

async function sh(cmd: string[], what: string): Promise<string> {
  const p = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" })
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
  if (code !== 0) throw new Error(`${what}: ${cmd.join(" ")} exited with ${code}: ${err.trim() || out.trim()}`)
  return out
}

/** Runs `cmd` and ignores its failure: for removing what may already be gone. */
function shSync(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" })
  return r.exitCode === 0 ? r.stdout.toString() : ""
}

function netnsPids(ip: string, ns: string): number[] {
  return shSync([ip, "netns", "pids", ns])
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
}

function killPids(pids: number[]): void {
  for (const pid of pids)
    try {
      process.kill(pid, "SIGKILL")
    } catch {} // gone already
}

/** nats-server processes of this module's naming, by the pid of the test process that started them. */
function natsProcesses(): { pid: number; owner: number }[] {
  const found: { pid: number; owner: number }[] = []
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue
    let cmd = ""
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ")
    } catch {
      continue // exited while we looked
    }
    const m = cmd.includes("nats-server") ? NATS_NAME.exec(cmd) : null
    if (m) found.push({ pid: Number(p), owner: Number(m[1]) })
  }
  return found
}

/**
 * For a test file: two hosts opened before its tests (unless `skip`, why they cannot be made here, which is
 * printed) and closed after them, and `cleanup`, what each test started, undone after it in reverse order.
 */
export function hostsPerFile(
  what: string,
  opts: HostsOptions = {},
): { readonly skip: string | null; readonly hosts: Hosts; cleanup: (() => Promise<unknown>)[] } {
  const skip = hostsSkipReason()
  if (skip) console.warn(`the ${what} tests are skipped: ${skip}`)
  let hosts: Hosts | undefined
  const cleanup: (() => Promise<unknown>)[] = []
  beforeAll(async () => {
    if (!skip) hosts = await openHosts(opts)
  }, 60_000)
  afterAll(async () => {
    await hosts?.close()
  })
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f()
  })
  return {
    skip,
    cleanup,
    get hosts() {
      if (!hosts) throw new Error("the hosts are not open (skipped, or before beforeAll)")
      return hosts
    },
  }
}

/**
 * Removes what openHosts made for test processes that no longer run (killed before they could close): their
 * nats-servers and every process left in their netns (kill -9), their veth pairs, netns and temporary folders.
 * Returns what it removed. openHosts calls it first; `bun test/support/hosts.ts --clean` runs it by hand. (Should
 * a dead owner's pid be reused meanwhile, its leftovers stay until that process ends.)
 */
export function removeStaleHosts(): string[] {
  const removed: string[] = []
  const ip = findTool("ip")
  const dead = (owner: string | number) => Number(owner) !== process.pid && !alive(Number(owner))
  for (const { pid, owner } of natsProcesses())
    if (dead(owner)) {
      killPids([pid])
      removed.push(`nats-server ${pid}`)
    }
  if (ip) {
    const namespaces = existsSync("/run/netns") ? readdirSync("/run/netns") : []
    for (const ns of namespaces) {
      const m = NETNS.exec(ns)
      if (!m || !dead(m[1]!)) continue
      killPids(netnsPids(ip, ns))
      shSync([ip, "netns", "del", ns])
      removed.push(`netns ${ns}`)
    }
    for (const link of existsSync("/sys/class/net") ? readdirSync("/sys/class/net") : []) {
      const m = VETH.exec(link)
      if (!m || !dead(m[1]!)) continue
      shSync([ip, "link", "del", link])
      removed.push(`link ${link}`)
    }
  }
  for (const d of readdirSync(tmpdir())) {
    const m = TMP.exec(d)
    if (!m || !dead(m[1]!)) continue
    rmSync(join(tmpdir(), d), { recursive: true, force: true })
    removed.push(`folder ${join(tmpdir(), d)}`)
  }
  return removed
}

/** A /30 in 10.213.0.0/16 no interface of host A uses yet, starting from one derived from the pid (so
 * concurrent test processes start apart), and `n` (so one process's several hosts do too). */
function pickBlock(ip: string, n: number): { a: string; b: string } {
  const used = new Set<string>()
  for (const m of shSync([ip, "-o", "-4", "addr", "show"]).matchAll(/inet (10\.213\.\d+\.\d+)/g)) {
    const [x, y] = m[1]!.split(".").slice(2).map(Number)
    used.add(`${x}.${y! & ~3}`)
  }
  for (let k = 0; k < 16384; k++) {
    const idx = (process.pid + n * 1021 + k) % 16384
    const x = idx >> 6
    const y = (idx & 63) << 2
    if (!used.has(`${x}.${y}`)) return { a: `10.213.${x}.${y + 1}`, b: `10.213.${x}.${y + 2}` }
  }
  throw new Error("every /30 of 10.213.0.0/16 is in use on this machine")
}

/** `n` distinct TCP ports free on `addr` (host A's ports: a server elsewhere on this machine may hold 4222 on
 * 0.0.0.0). All are held until all are chosen, so the kernel cannot hand out one twice. */
function freePorts(addr: string, n: number): number[] {
  const held = Array.from({ length: n }, () => Bun.listen({ hostname: addr, port: 0, socket: { data() {} } }))
  const ports = held.map((l) => l.port)
  for (const l of held) l.stop(true)
  return ports
}

/** Whether a NATS server answers a TCP connection on addr:port with its INFO line. */
function acceptsClients(addr: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false
    const finish = (ok: boolean, s?: { end(): void }) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      s?.end()
      resolve(ok)
    }
    const timer = setTimeout(() => finish(false), 1000)
    Bun.connect({
      hostname: addr,
      port,
      socket: {
        data: (s, d) => finish(new TextDecoder().decode(d).startsWith("INFO "), s),
        close: () => finish(false),
        error: () => finish(false),
        connectError: () => finish(false),
      },
    }).catch(() => finish(false))
  })
}

async function monitor(url: string): Promise<unknown> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) })
    return await r.json()
  } catch {
    return null
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n")
  } catch {
    return "(no log)"
  }
}

interface Server {
  readonly host: HostName
  readonly info: Host
  readonly cmd: string[]
  proc?: Subprocess
}

const open = new Set<HostsImpl>()
let counter = 0
let exitHandler = false

/**
 * Makes host B and starts both nats-servers; resolves once both accept clients, the route between them is up
 * and (with JetStream) both know the leader. On failure, removes what it made and rejects naming the step.
 */
export async function openHosts(opts: HostsOptions = {}): Promise<Hosts> {
  const ip = findTool("ip")
  if (!ip) throw new Error(`openHosts needs ip: ${IP_INSTALL} (.ci/run does)`)
  const nats = opts.natsServer ?? findTool("nats-server")
  if (!nats) throw new Error(`openHosts needs nats-server: ${NATS_INSTALL} (.ci/run does)`)
  if (process.getuid?.() !== 0) throw new Error("openHosts needs root (ip netns add, ip link add)")
  removeStaleHosts()
  if (!exitHandler) {
    exitHandler = true
    process.on("exit", () => {
      for (const h of open) h.closeSync()
    })
  }
  const hosts = new HostsImpl(ip, nats, ++counter, opts)
  open.add(hosts)
  try {
    await hosts.start()
  } catch (e) {
    await hosts.close()
    throw e
  }
  return hosts
}

class HostsImpl implements Hosts {
  readonly name: string
  readonly dir: string
  readonly a: Host
  readonly b: HostB
  readonly veth: string
  private readonly vethB: string
  private readonly shmDir: string
  private readonly sockDir: string
  private readonly servers: Record<HostName, Server>
  private readonly children = new Set<Child>()
  private readonly timeoutMs: number
  private readonly jetstream: boolean
  private closing: Promise<void> | undefined
  private made = { veth: false, netns: false }

  constructor(
    private readonly ip: string,
    private readonly natsBin: string,
    n: number,
    opts: HostsOptions,
  ) {
    this.name = `slotbus-${process.pid}-${n}`
    this.veth = `sb${process.pid}-${n}a`
    this.vethB = `sb${process.pid}-${n}b`
    if (this.veth.length > 15) throw new Error(`interface name ${this.veth} is longer than Linux's 15 characters`)
    this.timeoutMs = opts.timeoutMs ?? 15_000
    this.jetstream = opts.jetstream ?? false
    const block = pickBlock(ip, n)
    // Last, so nothing above can throw with the folder made.
    this.dir = mkdtempSync(join(tmpdir(), `slotbus-hosts-${process.pid}-${n}-`))
    this.shmDir = join(this.dir, "shm-b")
    mkdirSync(this.shmDir)
    chmodSync(this.shmDir, 0o1777)
    this.sockDir = join(this.dir, "sock-b")
    mkdirSync(this.sockDir, { mode: 0o700 })
    chmodSync(this.sockDir, 0o700) // whatever the umask: the socket directory must be exactly 0700
    const host = (h: HostName, addr: string, ports: typeof B_PORTS): Host => ({
      addr,
      natsUrl: `nats://${addr}:${ports.client}`,
      monitorUrl: `http://${addr}:${ports.monitor}`,
      serverName: `${this.name}-${h}`,
      logFile: join(this.dir, `nats-${h}.log`),
    })
    // Host A's ports are probed once the address exists (start()); placeholders until then.
    this.a = host("a", block.a, { client: 0, cluster: 0, monitor: 0 })
    this.b = { ...host("b", block.b, B_PORTS), netns: this.name }
    this.servers = {
      a: { host: "a", info: this.a, cmd: [] },
      b: { host: "b", info: this.b, cmd: [] },
    }
  }

  private natsCmd(h: HostName, ports: typeof B_PORTS, peer: { addr: string; cluster: number }): string[] {
    const info = h === "a" ? this.a : this.b
    return [
      this.natsBin,
      ...["--addr", info.addr, "--port", `${ports.client}`, "--http_port", `${ports.monitor}`],
      ...["--server_name", info.serverName, "--cluster_name", this.name],
      ...["--cluster", `nats://${info.addr}:${ports.cluster}`, "--routes", `nats://${peer.addr}:${peer.cluster}`],
      ...(this.jetstream ? ["--jetstream", "--store_dir", join(this.dir, `js-${h}`)] : []),
      ...["--log", info.logFile],
    ]
  }

  async start(): Promise<void> {
    const ip = this.ip
    await sh([ip, "netns", "add", this.name], "creating host B's netns")
    this.made.netns = true
    await sh([ip, "link", "add", this.veth, "type", "veth", "peer", "name", this.vethB], "creating the veth pair")
    this.made.veth = true
    await sh([ip, "link", "set", this.vethB, "netns", this.name], "moving the veth's end into host B")
    await sh([ip, "addr", "add", `${this.a.addr}/30`, "dev", this.veth], "addressing host A's end")
    await sh([ip, "link", "set", this.veth, "up"], "bringing host A's end up")
    await sh([ip, "-n", this.name, "addr", "add", `${this.b.addr}/30`, "dev", this.vethB], "addressing host B's end")
    await sh([ip, "-n", this.name, "link", "set", this.vethB, "up"], "bringing host B's end up")
    await sh([ip, "-n", this.name, "link", "set", "lo", "up"], "bringing host B's lo up")

    const [client, cluster, monitor] = freePorts(this.a.addr, 3) as [number, number, number]
    const aPorts = { client, cluster, monitor }
    Object.assign(this.a, {
      natsUrl: `nats://${this.a.addr}:${aPorts.client}`,
      monitorUrl: `http://${this.a.addr}:${aPorts.monitor}`,
    })
    this.servers.a.cmd.push(...this.natsCmd("a", aPorts, { addr: this.b.addr, cluster: B_PORTS.cluster }))
    this.servers.b.cmd.push(...this.natsCmd("b", B_PORTS, { addr: this.a.addr, cluster: aPorts.cluster }))
    // A first, then B: B's first route attempt then finds A listening (a failed one is retried only after 1 s).
    this.launch("a")
    await this.waitAccepting("a")
    this.launch("b")
    await this.waitReady()
  }

  private launch(h: HostName): void {
    const s = this.servers[h]
    const cmd = h === "a" ? s.cmd : this.onB(s.cmd)
    s.proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "pipe" })
  }

  /** `cmd` run in host B: its netns (ip netns exec also gives it a mount namespace of its own), with B's folder
   * bind-mounted on /dev/shm, B's socket directory in SLOTBUS_SOCKET_DIR and its door directory (docs/PROTOCOL.md
   * §1.1, made by B's first hub with allowUids) in SLOTBUS_DOOR_DIR (set here, so no env of the caller's
   * can leave it out). ip and sh exec, so the process's pid is the one spawned. */
  private onB(cmd: string[]): string[] {
    const script =
      'mount --bind "$0" /dev/shm && SLOTBUS_SOCKET_DIR="$1" SLOTBUS_DOOR_DIR="$1.door" && export SLOTBUS_SOCKET_DIR SLOTBUS_DOOR_DIR && shift && exec "$@"'
    return [this.ip, "netns", "exec", this.name, "sh", "-c", script, this.shmDir, this.sockDir, ...cmd]
  }

  spawnOnB(cmd: string[], opts?: SpawnOptions): Child {
    if (this.closing) throw new Error(`hosts ${this.name} are closed`)
    const c = spawn(this.onB(cmd), opts)
    this.children.add(c)
    void c.exited.then(() => this.children.delete(c))
    return c
  }

  natsRunning(h: HostName): boolean {
    const p = this.servers[h].proc
    return p !== undefined && p.exitCode === null && p.signalCode === null
  }

  async killNats(h: HostName): Promise<void> {
    const p = this.servers[h].proc
    if (!p) return
    p.kill("SIGKILL")
    await p.exited
  }

  async restartNats(h: HostName): Promise<void> {
    if (this.closing) throw new Error(`hosts ${this.name} are closed`)
    await this.killNats(h)
    this.launch(h)
    await this.waitReady()
  }

  /** Polls `cond` until it holds; fails after timeoutMs, or at once if a server that should run exited. */
  private async until(what: string, cond: () => Promise<boolean>, hosts: HostName[]): Promise<void> {
    const deadline = performance.now() + this.timeoutMs
    for (;;) {
      for (const h of hosts) {
        const p = this.servers[h].proc
        if (p && !this.natsRunning(h)) {
          const err = p.stderr instanceof ReadableStream ? await new Response(p.stderr).text() : ""
          throw new Error(
            `host ${h.toUpperCase()}'s nats-server exited (${p.exitCode ?? p.signalCode}) while waiting until ${what}: ` +
              `${this.servers[h].cmd.join(" ")}\n${err.trim()}\nlog ${this.servers[h].info.logFile}:\n${tail(this.servers[h].info.logFile)}`,
          )
        }
      }
      if (await cond()) return
      if (performance.now() > deadline)
        throw new Error(
          `timed out after ${this.timeoutMs}ms waiting until ${what}\n` +
            hosts.map((h) => `log ${this.servers[h].info.logFile}:\n${tail(this.servers[h].info.logFile)}`).join("\n"),
        )
      await Bun.sleep(20)
    }
  }

  private waitAccepting(h: HostName): Promise<void> {
    const { addr, natsUrl } = this.servers[h].info
    const port = Number(new URL(natsUrl).port)
    return this.until(
      `host ${h.toUpperCase()}'s nats-server accepts clients on ${natsUrl}`,
      () => acceptsClients(addr, port),
      [h],
    )
  }

  /** Every running server accepts clients; with both running, the route is up on both sides and, with
   * JetStream, both report healthy (they know the meta leader). */
  private async waitReady(): Promise<void> {
    const up = (["a", "b"] as const).filter((h) => this.natsRunning(h))
    for (const h of up) await this.waitAccepting(h)
    if (up.length < 2) return
    const routes = async (h: HostName) =>
      ((await monitor(`${this.servers[h].info.monitorUrl}/routez`)) as { num_routes?: number } | null)?.num_routes ?? 0
    await this.until(
      "the route between the two servers is up",
      async () => (await routes("a")) > 0 && (await routes("b")) > 0,
      up,
    )
    if (!this.jetstream) return
    const healthy = async (h: HostName) =>
      ((await monitor(`${this.servers[h].info.monitorUrl}/healthz`)) as { status?: string } | null)?.status === "ok"
    await this.until(
      "JetStream is healthy on both servers (a meta leader is elected)",
      async () => (await healthy("a")) && (await healthy("b")),
      up,
    )
  }

  close(): Promise<void> {
    this.closing ??= this.teardown()
    return this.closing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  private async teardown(): Promise<void> {
    await Promise.all([...this.children].map((c) => c.kill()))
    await Promise.all((["a", "b"] as const).map((h) => this.killNats(h)))
    this.closeSync()
    // Processes of host B still in its netns (a spawnOnB child's children) were killed; the netns itself is gone
    // from `ip netns list` at once and freed by the kernel once they exited.
  }

  /** What close() does, without waiting: for the exit handler, where nothing can be awaited. */
  closeSync(): void {
    for (const h of ["a", "b"] as const) this.servers[h].proc?.kill("SIGKILL")
    for (const c of this.children) c.signal("SIGKILL")
    if (this.made.netns) killPids(netnsPids(this.ip, this.name))
    if (this.made.veth) shSync([this.ip, "link", "del", this.veth]) // deletes host B's end with it
    if (this.made.netns) shSync([this.ip, "netns", "del", this.name])
    this.made = { veth: false, netns: false }
    rmSync(this.dir, { recursive: true, force: true })
    open.delete(this)
  }
}

if (import.meta.main) {
  if (process.argv[2] !== "--clean") {
    console.error("usage: bun test/support/hosts.ts --clean   (removes what dead test processes left behind)")
    process.exit(2)
  }
  const removed = removeStaleHosts()
  console.log(removed.length ? `removed:\n  ${removed.join("\n  ")}` : "nothing to remove")
}
