// Hub and worker halves of a length-prefixed echo over a Bun stream socket; unix.ts and tcp.ts pick the address.
// The hub listens and the worker connects, as with slotbus's rendezvous.
import type { Socket, SocketHandler } from "bun"
import { FrameReader, FrameWriter } from "./frames.ts"
import { spawn } from "../lib/child.ts"
import { cpuReport, parseCpuReport } from "../lib/cpu.ts"
import { EMPTY, FifoReplies, type Transport } from "./transport.ts"

export type StreamAddress = { unix: string } | { hostname: string; port: number }

/** Listens on `address`, starts the worker with the address actually bound, and sends it frames. */
export async function openStream(
  address: StreamAddress,
  workerCmd: (bound: StreamAddress) => string[],
  what: string,
): Promise<Transport> {
  const replies = new FifoReplies()
  const { promise: connected, resolve } = Promise.withResolvers<FrameWriter>()
  let writer: FrameWriter | null = null
  const reader = new FrameReader((frame) => replies.reply(frame.slice()))
  const socket: SocketHandler<undefined> = {
    open(s) {
      s.setNoDelay(true)
      writer = new FrameWriter(s as Socket<unknown>)
      resolve(writer)
    },
    data: (_s, chunk) => reader.push(chunk),
    drain: () => writer?.flush(),
    close: () => replies.failAll(new Error(`${what} closed its socket`)),
  }
  let listener: { stop(closeActive?: boolean): void }
  let bound: StreamAddress = address
  if ("unix" in address) listener = Bun.listen({ unix: address.unix, socket })
  else {
    const tcp = Bun.listen({ hostname: address.hostname, port: address.port, socket })
    bound = { hostname: address.hostname, port: tcp.port }
    listener = tcp
  }
  const child = spawn(workerCmd(bound))
  const close = async () => {
    await child.kill()
    listener.stop(true)
  }
  try {
    const w = await child.whileAlive(connected, what)
    const roundTrip = (body: Uint8Array) => {
      const reply = replies.wait()
      w.send(body)
      return reply
    }
    return { roundTrip, workerCpu: async () => parseCpuReport(await roundTrip(EMPTY)), close }
  } catch (e) {
    await close()
    throw e
  }
}

/** The worker: connects to the hub and echoes every frame; an empty frame asks for its CPU time. */
export async function serveStream(address: StreamAddress) {
  let writer: FrameWriter | null = null
  const reader = new FrameReader((frame) => writer!.send(frame.length === 0 ? cpuReport() : frame))
  const socket: SocketHandler<undefined> = {
    data: (_s, chunk) => reader.push(chunk),
    drain: () => writer?.flush(),
    close: () => process.exit(0),
  }
  const s =
    "unix" in address ? await Bun.connect({ unix: address.unix, socket }) : await Bun.connect({ ...address, socket })
  s.setNoDelay(true)
  writer = new FrameWriter(s as Socket<unknown>)
}
