// Shared test helpers: unique bus names, worker processes that never outlive their test, a hub with workers.
import { afterEach } from "bun:test"
import { join } from "node:path"
import type { Subprocess } from "bun"
import { SlotBus, type ListenOptions } from "../../src/index.ts"

export const ECHO_WORKER = join(import.meta.dir, "echo-worker.ts")

let counter = 0
/** A bus name no other test (or concurrently running test process) uses. */
export function busName(tag = "t"): string {
  return `sb-${process.pid}-${tag}-${++counter}`
}

export interface WorkerOptions {
  /** "spin" | "adaptive" | "park" | "<spinMicros>,<parkAfterMs>" */
  idle?: string
  /** Delay before answering every request (raw calls included). */
  delayMs?: number
  waitForHubMs?: number
  /** The timeoutMs of the worker.close() that SIGTERM triggers. */
  closeTimeoutMs?: number
}

export interface WorkerProcess {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">
  readonly pid: number
  /** Everything the worker printed so far. */
  output(): string
  /** Resolves with the exit code. */
  readonly exited: Promise<number>
  kill(signal?: NodeJS.Signals | number): Promise<number>
}

const live = new Set<WorkerProcess>()

/** Spawns test/support/echo-worker.ts for `bus` and waits until it prints "ready" (it is then connected). */
export async function spawnWorker(bus: string, opts: WorkerOptions = {}, readyTimeoutMs = 10_000): Promise<WorkerProcess> {
  const args = [bus]
  if (opts.idle !== undefined) args.push(`--idle=${opts.idle}`)
  if (opts.delayMs !== undefined) args.push(`--delay-ms=${opts.delayMs}`)
  if (opts.waitForHubMs !== undefined) args.push(`--wait-for-hub-ms=${opts.waitForHubMs}`)
  if (opts.closeTimeoutMs !== undefined) args.push(`--close-timeout-ms=${opts.closeTimeoutMs}`)
  const proc = Bun.spawn([process.execPath, ECHO_WORKER, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: process.env,
  })
  let out = ""
  let err = ""
  const { promise: ready, resolve: onReady } = Promise.withResolvers<void>()
  const collect = async (stream: ReadableStream<Uint8Array>, into: (s: string) => void) => {
    const decoder = new TextDecoder()
    for await (const chunk of stream) into(decoder.decode(chunk, { stream: true }))
  }
  const stdoutDone = collect(proc.stdout, (s) => {
    out += s
    if (/^ready$/m.test(out)) onReady()
  })
  const stderrDone = collect(proc.stderr, (s) => (err += s))
  const exited = proc.exited.then(async (code) => {
    await Promise.allSettled([stdoutDone, stderrDone])
    return code
  })
  const w: WorkerProcess = {
    proc,
    pid: proc.pid,
    output: () => out + err,
    exited,
    async kill(signal = "SIGKILL") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      const code = await exited
      live.delete(w)
      return code
    },
  }
  live.add(w)
  let timer: ReturnType<typeof setTimeout> | undefined
  const outcome = await Promise.race([
    ready.then(() => "ready" as const),
    exited.then(() => "exited" as const),
    new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), readyTimeoutMs))),
  ])
  clearTimeout(timer)
  if (outcome !== "ready") {
    await w.kill()
    throw new Error(`worker for "${bus}" ${outcome === "exited" ? "exited" : "timed out"} before ready:\n${w.output()}`)
  }
  return w
}

/** SIGKILLs every worker process still running. */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...live].map((w) => w.kill()))
}

/** Registers an afterEach that kills any worker a failed test left behind: a safety net under try/finally. */
export function killWorkersAfterEach(): void {
  afterEach(killAllWorkers)
}

/**
 * Listens on a fresh bus, starts one worker process per entry of `workers`, waits until the hub sees them
 * all, runs `fn`, and always kills the workers and closes the bus afterwards.
 */
export async function withHub(
  opts: ListenOptions,
  workers: WorkerOptions[],
  fn: (bus: SlotBus, procs: WorkerProcess[]) => Promise<void>,
): Promise<void> {
  const bus = await SlotBus.listen(busName(), opts)
  const procs: WorkerProcess[] = []
  try {
    for (const w of workers) procs.push(await spawnWorker(bus.name, w))
    await bus.waitForWorkers(procs.length)
    await fn(bus, procs)
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    await bus.close({ drain: false })
  }
}

/** Resolves when `cond()` holds, polling; rejects after timeoutMs with `what`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting until ${what}`)
    await Bun.sleep(5)
  }
}

/** Deterministic bytes, the same function the echo worker uses for /large and /zero-copy. */
export function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255
  return out
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)))
  return out
}

export function sha256(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex")
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error("expected the promise to reject, but it resolved")
}
