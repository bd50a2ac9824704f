// A hub in a process of its own, measured over its stdin and stdout (methods/child-hub.ts drives it): the Node
// fronts (node/hub.ts) and the Linux and portable backends (methods/portable.ts). It prints "ready", then answers
// each stdin line with one JSON line: "check <size>" {}, "warm <size> <inflight> <ms>" {} after that traffic,
// "measure <size> <inflight> <ms> <warmMs>" a Sample with `times` as an array, "idle <ms>" the CPU of the hub and
// its worker with nothing sent; {error} when it failed.
// "close" ends it. Runs under Bun and Node alike (no Bun API).
import { createInterface } from "node:readline"
import { selfCpuSeconds } from "../lib/cpu.ts"
import { checkEcho, measureTransport, payload, warmTransport } from "./measure.ts"
import type { Transport } from "./transport.ts"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface IdleCpu {
  hubCpuS: number
  workerCpuS: number
  elapsedS: number
}

/** CPU seconds the hub and the worker use over `ms` with nothing sent, after some traffic. */
export async function idleCpu(t: Transport, ms: number): Promise<IdleCpu> {
  const body = new Uint8Array(64)
  for (let i = 0; i < 200; i++) await t.roundTrip(body)
  await sleep(50)
  const w0 = await t.workerCpu()
  const h0 = selfCpuSeconds()
  const t0 = performance.now()
  await sleep(ms)
  const h1 = selfCpuSeconds()
  const elapsedS = (performance.now() - t0) / 1000
  const w1 = await t.workerCpu()
  return { hubCpuS: h1 - h0, workerCpuS: w1 - w0, elapsedS }
}

async function answer(t: Transport, line: string): Promise<object> {
  const [verb, ...n] = line.split(" ")
  const [a, b, c, d] = n.map(Number)
  if (verb === "check") return (await checkEcho(t, payload(a!)), {})
  if (verb === "idle") return idleCpu(t, a!)
  if (verb === "warm") return (await warmTransport(t, payload(a!), b!, c!), {})
  if (verb !== "measure") throw new Error(`unknown command ${line}`)
  const s = await measureTransport(t, payload(a!), b!, c!, d!)
  return { ...s, times: Array.from(s.times.values()) }
}

/** Serves `t` over stdin and stdout until "close" or the end of stdin, then closes it and exits. */
export async function serveHub(t: Transport): Promise<never> {
  console.log("ready")
  try {
    for await (const line of createInterface({ input: process.stdin })) {
      if (line === "close") break
      const out = await answer(t, line).catch((e: Error) => ({ error: e.message }))
      process.stdout.write(`${JSON.stringify(out)}\n`)
    }
  } finally {
    await t.close()
  }
  process.exit(0)
}
