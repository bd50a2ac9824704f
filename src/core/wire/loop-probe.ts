// What a pump asks of its process's event loop: its epoll fds (is I/O waiting?) and how many turns pumps have run.
import { readdirSync, readlinkSync } from "node:fs"

let turns = 0
let loopFds: Int32Array | undefined

/**
 * The epoll fds of this process's event loops (Linux: one a Bun process, two under `bun test`, one more per Worker
 * thread), at most 8, found once: a pump asks them whether the loop has I/O waiting. Empty elsewhere.
 */
export function eventLoopFds(): Int32Array {
  if (loopFds) return loopFds
  const fds: number[] = []
  try {
    // Bun makes its loops early, so they have low numbers: a server's thousands of sockets are not looked at.
    for (const fd of readdirSync("/proc/self/fd"))
      try {
        if (Number(fd) < 256 && readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:[eventpoll]") fds.push(Number(fd))
      } catch {}
  } catch {}
  loopFds = Int32Array.from(fds.sort((a, b) => a - b).slice(0, 8))
  return loopFds
}

/**
 * How many times a pump of this process has run in an event-loop turn of its own (a setImmediate run, a ring) or
 * left parking: while it reads the same, every pump ran in the microtask drain of the turn that read it, so an
 * answer collected then is its caller's turn's (docs/perf/bun-late-write.md says why that matters).
 */
export function pumpTurns(): number {
  return turns
}

/** A pump ran in an event-loop turn of its own (a setImmediate run, a ring) or left parking. */
export function countTurn(): void {
  turns++
}
