// A Worker party for the SharedArrayBuffer + Atomics lock (same process only). Messages mirror child.ts.
import { atomicsLock, contend, handover, warmUp, type Hold } from "./locks.ts"

declare const self: Worker
self.onmessage = async (e: MessageEvent) => {
  const { job, sab, ms, role, n, spin, hold } = e.data as {
    job: string
    sab: SharedArrayBuffer
    ms: number
    role: "a" | "b"
    n: number
    spin: boolean
    hold: Hold
  }
  const word = new Int32Array(sab)
  const lock = atomicsLock(word)
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  if (job === "contend") {
    postMessage({ count: await contend(lock, ms, false) })
  } else {
    await warmUp(atomicsLock(new Int32Array(new SharedArrayBuffer(4))), 20_000)
    // Atomics.wait as the sleep: a Worker may block, and a timer would add the event loop's jitter
    const r = await handover(lock, role, n, spin, hold, (t) => void Atomics.wait(sleeper, 0, 0, t), "thread")
    postMessage({ result: r })
  }
}
