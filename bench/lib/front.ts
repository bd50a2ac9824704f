// A bench's front process (bench/realwork, bench/carry): a server of its own that prints
// "ready port=<port> workers=<pid,…> threads=<tid,…>" once its workers serve, stops them on SIGTERM and ends with
// its stdin (so it goes with the bench, even one killed).
import { spawn, type Child } from "./child.ts"

export interface Front {
  front: Child
  /** http://127.0.0.1:<port> */
  base: string
  /** Its worker processes' pids, and its Worker threads' kernel thread ids. */
  workers: number[]
  threads: number[]
}

const READY = /^ready port=(\d+) workers=([\d,]*) threads=([\d,]*)$/

/** Runs `cmd` and resolves once it is ready; rejects with what it said last on stderr if it exits first. */
export async function startFront(cmd: string[], env?: Record<string, string | undefined>): Promise<Front> {
  const front = spawn(cmd, { stdin: "pipe", env })
  try {
    const [, port, pids, tids] = await front.waitLine(READY, 60_000)
    const list = (s: string) => (s ? s.split(",").map(Number) : [])
    return { front, base: `http://127.0.0.1:${port}`, workers: list(pids!), threads: list(tids!) }
  } catch (e) {
    const ended = await Promise.race([front.exited.then(() => true), Bun.sleep(500).then(() => false)])
    await front.stop(5000)
    if (!ended) throw e
    // what the front said last on stderr: the error, not Bun's version line
    const said = front.stderr.split("\n").filter((l) => l.trim() && !/^Bun v\d/.test(l))
    throw new Error(`its front exited with ${await front.exited}: ${said.slice(-2).join(" | ") || "nothing on stderr"}`)
  }
}

/** The front ended (SIGTERM: it stops its workers; SIGKILL 5 s later), then any worker still running 3 s on killed. */
export async function stopFront(f: Front): Promise<void> {
  await f.front.stop(5000)
  const alive = (pid: number) => {
    try {
      return process.kill(pid, 0)
    } catch {
      return false
    }
  }
  for (let i = 0; i < 30 && f.workers.some(alive); i++) await Bun.sleep(100)
  for (const pid of f.workers.filter(alive)) process.kill(pid, "SIGKILL")
}
