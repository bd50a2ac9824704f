// A process run under strace -f with its send calls logged, and the log read as send calls per HTTP answer: how
// test/core/endpoint/late-write.test.ts and test/http/late-write.test.ts see how an answer reached its socket.
import { readFileSync } from "node:fs"
import { findTool, spawn, type Child } from "./helpers.ts"
import { sayWhySkipped, toolSkipReason } from "./tools.ts"

/** Why the tests that count send calls cannot run here (strace is not installed), or null. */
export const straceSkip = toolSkipReason("strace")
sayWhySkipped("the tests that count send calls with strace", straceSkip)
const STRACE = findTool("strace") ?? "strace"

/** Runs `cmd` under strace -f, logging its sendto, sendmsg and writev calls to `log`. */
export function straced(log: string, cmd: string[]): Child {
  const trace = ["-f", "-qq", "-e", "trace=sendto,sendmsg,writev", "-e", "signal=none", "-s", "12", "-o", log]
  return spawn([STRACE, ...trace, ...cmd])
}

/** The pids of strace's tracees (its children): killing strace leaves them running. */
export function tracees(stracePid: number): number[] {
  try {
    const children = readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, "utf8").trim()
    return children === "" ? [] : children.split(" ").map(Number)
  } catch {
    return []
  }
}

/**
 * HTTP answers in a log of `straced` (calls whose bytes start with a status line) and the send calls on the
 * connections they went out on.
 */
export function sendsPerAnswer(log: string): { answers: number; sends: number } {
  const calls = [...readFileSync(log, "utf8").matchAll(/^(\d+) +(?:sendto|sendmsg|writev)\((\d+), (.*)$/gm)].filter(
    (m) => !m[3]!.includes("resumed"),
  )
  const heads = calls.filter((m) => m[3]!.includes('"HTTP/1.1 '))
  const conns = new Set(heads.map((m) => `${m[1]}:${m[2]}`))
  return { answers: heads.length, sends: calls.filter((m) => conns.has(`${m[1]}:${m[2]}`)).length }
}
