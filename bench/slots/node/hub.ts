// The hub of the bench's Node methods, run under Node (built to JavaScript by methods/node.ts): it opens one
// transport to a worker of its own, then measures it as the bench asks, with the same code as the Bun hubs
// (measure.ts), and sends the samples back. Usage: node hub.js <method> [<idle>], where <method> is slotbus-node,
// slotbus-bun (a Bun worker: $SLOTBUS_BENCH_BUN runs $SLOTBUS_BENCH_BUN_WORKER), process.send, worker or unix.
// It answers the orchestrator line by line (../line-hub.ts).
import { type ChildProcess, fork, spawn } from "node:child_process"
import { rmSync } from "node:fs"
import { createServer, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Worker } from "node:worker_threads"
import { type IdleStrategy, SlotBus } from "../../../src/index.ts"
import { parseCpuReport } from "../../lib/cpu.ts"
import { FrameReader, frameOf } from "../frames.ts"
import { serveHub } from "../line-hub.ts"
import { EMPTY, FifoReplies, type Transport } from "../transport.ts"

const WORKER = join(import.meta.dirname, "worker.js")

/** Resolves with `work`, or rejects when `child` exits first. */
function whileAlive<T>(child: ChildProcess, work: Promise<T>, what: string): Promise<T> {
  const died = new Promise<never>((_, reject) =>
    child.once("exit", (code, sig) => reject(new Error(`${what} exited with ${code ?? sig}`))),
  )
  return Promise.race([work, died])
}

const ended = (child: ChildProcess) =>
  new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())))

async function slotbus(runtime: "node" | "bun", idle: string): Promise<Transport> {
  const name = `bench-node-${process.pid}`
  const bus = await SlotBus.listen(name, { idle: idle as IdleStrategy, slots: 32 })
  const cmd =
    runtime === "node"
      ? [process.execPath, ...process.execArgv, WORKER, "slotbus", name, idle]
      : [process.env.SLOTBUS_BENCH_BUN!, process.env.SLOTBUS_BENCH_BUN_WORKER!, name, idle]
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "ignore", "inherit"] })
  const close = async () => {
    child.kill("SIGKILL")
    await ended(child)
    await bus.close({ drain: false })
  }
  try {
    await whileAlive(child, bus.waitForWorkers(1, 10_000), `the ${runtime} worker`)
  } catch (e) {
    await close()
    throw e
  }
  return { roundTrip: (body) => bus.call(body), workerCpu: async () => parseCpuReport(await bus.call(EMPTY)), close }
}

async function processSend(): Promise<Transport> {
  const replies = new FifoReplies()
  const child = fork(WORKER, ["process.send"], {
    serialization: "advanced",
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  })
  const ready = new Promise<void>((resolve) => child.once("message", () => resolve()))
  await whileAlive(child, ready, "the process.send worker")
  child.on("message", (m) => replies.reply(m as Uint8Array))
  child.once("exit", (code) => replies.failAll(new Error(`the process.send worker exited with ${code}`)))
  const roundTrip = (body: Uint8Array) => {
    const reply = replies.wait()
    child.send(body)
    return reply
  }
  const close = async () => void (child.kill("SIGKILL"), await ended(child))
  return { roundTrip, workerCpu: async () => parseCpuReport(await roundTrip(EMPTY)), close }
}

async function thread(): Promise<Transport> {
  const replies = new FifoReplies()
  const worker = new Worker(WORKER)
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve())
    worker.once("error", reject)
  })
  worker.on("message", (m: Uint8Array) => replies.reply(m))
  worker.on("error", (e: Error) => replies.failAll(e))
  const roundTrip = (body: Uint8Array) => {
    const reply = replies.wait()
    worker.postMessage(body)
    return reply
  }
  const workerCpu = async () => Number(new TextDecoder().decode(await roundTrip(EMPTY)))
  return { roundTrip, workerCpu, sameProcess: true, close: async () => void (await worker.terminate()) }
}

async function unix(): Promise<Transport> {
  const path = join(tmpdir(), `slotbus-bench-node-${process.pid}.sock`)
  rmSync(path, { force: true })
  const replies = new FifoReplies()
  const server = createServer()
  await new Promise<void>((r) => server.listen(path, r))
  const connected = new Promise<Socket>((r) => server.once("connection", r))
  const child = spawn(process.execPath, [...process.execArgv, WORKER, "unix", path], {
    stdio: ["ignore", "ignore", "inherit"],
  })
  const close = async () => {
    child.kill("SIGKILL")
    await ended(child)
    server.close()
    rmSync(path, { force: true })
  }
  try {
    const socket = await whileAlive(child, connected, "the unix socket worker")
    const reader = new FrameReader((f) => replies.reply(f.slice()))
    socket.on("data", (chunk: Buffer) => reader.push(chunk))
    socket.on("close", () => replies.failAll(new Error("the unix socket worker closed its socket")))
    const roundTrip = (body: Uint8Array) => {
      const reply = replies.wait()
      socket.write(frameOf(body))
      return reply
    }
    return { roundTrip, workerCpu: async () => parseCpuReport(await roundTrip(EMPTY)), close }
  } catch (e) {
    await close()
    throw e
  }
}

function open(method: string | undefined, idle: string): Promise<Transport> {
  if (method === "slotbus-node" || method === "slotbus-bun")
    return slotbus(method === "slotbus-node" ? "node" : "bun", idle)
  if (method === "process.send") return processSend()
  if (method === "worker") return thread()
  if (method === "unix") return unix()
  throw new Error(`hub.js: unknown method ${method}`)
}

const [method, idle = "adaptive"] = process.argv.slice(2)
await serveHub(await open(method, idle))
