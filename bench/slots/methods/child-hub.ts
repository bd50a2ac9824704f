// The orchestrator's side of a hub in a process of its own (../line-hub.ts): a Driver that asks it line by line.
import { type SpawnOptions, spawn } from "../../lib/child.ts"
import { Samples } from "../../lib/samples.ts"
import type { IdleCpu } from "../line-hub.ts"
import type { Driver, Sample } from "../measure.ts"

export interface ChildHub extends Driver {
  /** CPU seconds the parked hub and its worker use over `ms` with nothing sent. */
  idle(ms: number): Promise<IdleCpu>
}

/** Starts `cmd`, a line hub named `what` in messages, and resolves once it is ready. */
export async function childHub(cmd: string[], env: SpawnOptions["env"], what: string): Promise<ChildHub> {
  const hub = spawn(cmd, { env, stdin: "pipe" })
  let asked = 1 // line 0 is "ready"
  const ask = async <T>(line: string): Promise<T> => {
    const at = asked++
    hub.write(`${line}\n`)
    const out = JSON.parse(await hub.whileAlive(hub.line(at, Number.POSITIVE_INFINITY), what))
    if (out.error) throw new Error(`${what}: ${out.error}`)
    return out as T
  }
  try {
    await hub.whileAlive(hub.line(0), what)
  } catch (e) {
    await hub.kill()
    throw e
  }
  return {
    check: (size) => ask(`check ${size}`),
    measure: async (size, inflight, ms, warmMs) => {
      const s = await ask<Omit<Sample, "times"> & { times: number[] }>(`measure ${size} ${inflight} ${ms} ${warmMs}`)
      return { ...s, times: Samples.of(s.times) }
    },
    warm: async (size, inflight, ms) => void (await ask(`warm ${size} ${inflight} ${ms}`)),
    idle: (ms) => ask(`idle ${ms}`),
    close: async () => {
      // "close" lets the hub end its worker and its bus; kill -9 only if it does not exit soon after
      if (hub.running) hub.write("close\n")
      await Promise.race([hub.exited, Bun.sleep(5000)])
      await hub.kill()
    },
  }
}
