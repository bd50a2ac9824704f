// The tables the conformance suites run over (issue 46). A transport for other hosts is one entry of TRANSPORTS:
// how to start its server for a test file, and how to make it from that server's address (REMOTES in remotes.ts,
// which the fixtures' processes import: no bun:test there, as they also run under Node). The endpoint suite also runs
// over ENDPOINTS: the kinds of worker a bus dispatches to, shared memory first, then one per transport. Every suite
// runs its peer processes under each runtime of test/support/runtime/peers.ts (Bun, and Node 26 when there is one:
// issue 67). Adding a transport: add its entries here and in remotes.ts, and make test/conformance/*.test.ts pass
// (CONTRIBUTING.md, "Adding a transport").
import { beforeAll, afterAll } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { natsSkipReason, startNats } from "../support/nats.ts"
import { type AnyRemote, REMOTES } from "./remotes.ts"

export type { AnyRemote } from "./remotes.ts"

export interface Server {
  /** What `remote(address)` takes, passed to the fixtures on their command line. */
  readonly address: string
  stop(): Promise<void>
}

export interface Transport {
  /** Its name: what `bus.workers` says as a worker's transport, and what the tests' names say. */
  readonly name: string
  /** Why it cannot run here, with the command that installs what is missing; null when it can. */
  skip(): string | null
  /** Starts a server of its own for a test file; `leases`: one that also keeps contests' tables. */
  start(opts: { leases?: boolean }): Promise<Server>
  /** The transport a caller passes as `remote`, reaching the server at `address`. */
  remote(address: string): AnyRemote
}

export const TRANSPORTS: Transport[] = [
  {
    name: "nats",
    skip: natsSkipReason,
    async start(opts) {
      const { url, server } = await startNats({ jetstream: opts.leases === true })
      return { address: url, stop: async () => void (await server.kill()) }
    },
    remote: REMOTES.nats!,
  },
]

/**
 * For a test file over `t`: its server, started before the file's tests (unless skipped) and stopped after them.
 * `address` is valid inside tests.
 */
export function serverPerFile(
  t: { skip(): string | null; start: Transport["start"] },
  opts: { leases?: boolean } = {},
) {
  const ctx = { address: "" }
  let server: Server | undefined
  beforeAll(async () => {
    if (t.skip() === null) ({ address: ctx.address } = server = await t.start(opts))
  }, 30_000)
  afterAll(async () => {
    await server?.stop()
  })
  return ctx as { readonly address: string }
}

/** A kind of worker as a bus's dispatcher sees it (src/core/endpoint/endpoint.ts), and how a test makes one. */
export interface EndpointKind {
  /** What `bus.workers` says as its transport. */
  readonly transport: string
  skip(): string | null
  start: Transport["start"]
  /** The bus's listen options for the server at `address` (`slots`: a worker's places, on this side). */
  listen(address: string, slots: number): import("../../src/index.ts").ListenOptions
  /** The arguments test/support/conformance/conformance-worker.ts takes after the bus's name. */
  workerArgs(address: string, slots: number): string[]
}

const HEARTBEAT_MS = 100 // a worker killed on another host is counted gone after 4 of them

export const ENDPOINTS: EndpointKind[] = [
  {
    transport: "shm",
    skip: () => null,
    start: async () => ({ address: "", stop: async () => {} }),
    listen: (_, slots) => ({ slots }),
    workerArgs: (_, slots) => [`--slots=${slots}`],
  },
  ...TRANSPORTS.map(
    (t): EndpointKind => ({
      transport: t.name,
      skip: t.skip,
      start: t.start,
      listen: (address) => ({ remote: t.remote(address), heartbeatMs: HEARTBEAT_MS }),
      workerArgs: (address, slots) => [`--slots=${slots}`, `--remote=${t.name}`, `--address=${address}`],
    }),
  ),
]

/**
 * The environment of processes on another host: the portable backend with a socket directory of their own
 * (SLOTBUS_PLATFORM=posix, SLOTBUS_SOCKET_DIR, docs/PROTOCOL.md §13.2), so their topics and contests are theirs and
 * meet this host's only through a transport, with no root or network namespace needed. `cleanup` gets the
 * directory's removal: push it before the host's processes, so it runs after them.
 */
export function anotherHost(cleanup: (() => Promise<unknown>)[]): Record<string, string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-host-b-"))
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }))
  return { ...process.env, SLOTBUS_PLATFORM: "posix", SLOTBUS_SOCKET_DIR: dir }
}
