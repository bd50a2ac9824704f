// What ends a supervisor's children when the process that started them is gone without a word (kill -9, the OOM
// killer): a small `sh` beside them, its stdin a pipe from this process. This process tells it each child it starts
// ("+ pid") and each that exited ("- pid"), and "end" once it stopped them itself. When the pipe closes with no "end",
// it sends SIGTERM to those still listed, then SIGKILL to any left after the grace. A child that reads no stdin, or
// ignores its EOF and SIGTERM, would otherwise outlive its front for good. POSIX sh and kill: Linux and macOS.
import { existsSync } from "node:fs"
import { spawn, type Process } from "../../runtime/index.ts"

const SH = "/bin/sh"

// Ignores the stop signals a terminal or a process group gets: those are the front's to act on, and the reaper must
// still be there once the front has gone. Exits at "end", or after ending the children still listed.
const SCRIPT = `trap '' INT TERM HUP QUIT
pids=
while read -r op pid; do
  case $op in
    +) pids="$pids $pid" ;;
    -) rest=; for p in $pids; do [ "$p" = "$pid" ] || rest="$rest $p"; done; pids=$rest ;;
    end) exit 0 ;;
  esac
done
[ -z "$pids" ] && exit 0
kill -TERM $pids 2>/dev/null
i=0
while [ $i -lt "$1" ]; do
  left=; for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
  pids=$left
  [ -z "$pids" ] && exit 0
  sleep 0.1
  i=$((i + 1))
done
kill -KILL $pids 2>/dev/null
exit 0`

export class Reaper {
  private constructor(private readonly proc: Process<"pipe", "ignore", "ignore">) {}

  /**
   * A reaper whose children get SIGKILL `graceMs` after the SIGTERM it sends them once this process is gone; null
   * where there is no /bin/sh to run it (a distroless image): the children are then as they were without one.
   */
  static start(graceMs: number): Reaper | null {
    if (!existsSync(SH)) return null
    const ticks = String(Math.max(1, Math.ceil(graceMs / 100))) // its checks, 100 ms apart
    return new Reaper(
      spawn([SH, "-c", SCRIPT, "slotbus-reaper", ticks], {
        stdin: "pipe",
        stdout: "ignore",
        stderr: "ignore",
        detached: true, // beside the children (a group of their own each): a kill -9 of the front's group misses it
      }),
    )
  }

  /** `pid` is a child to end if this process goes. */
  add(pid: number) {
    this.say(`+ ${pid}\n`)
  }

  /** `pid` exited (a pid the system may give another process from now on): not to be signalled. */
  remove(pid: number) {
    this.say(`- ${pid}\n`)
  }

  /** This process stopped its children itself: the reaper leaves. */
  close() {
    this.say("end\n")
  }

  private say(line: string) {
    if (this.proc.exitCode !== null) return
    try {
      void Promise.resolve(this.proc.stdin.write(line)).catch(() => {})
      void Promise.resolve(this.proc.stdin.flush()).catch(() => {})
    } catch {} // the reaper is gone (killed by hand): the children are as they were before there was one
  }
}

/** A reaper started with the first child it is told of, and started again after close() (a pool stopped, then started). */
export class OnDemandReaper {
  private reaper: Reaper | null | undefined

  /** `graceMs` is read as the reaper starts: the pool's killGraceMs. */
  constructor(private readonly graceMs: () => number) {}

  add(pid: number) {
    if (this.reaper === undefined) this.reaper = Reaper.start(this.graceMs())
    this.reaper?.add(pid)
  }

  remove(pid: number) {
    this.reaper?.remove(pid)
  }

  /** Its children were stopped: the reaper leaves. */
  close() {
    this.reaper?.close()
    this.reaper = undefined
  }
}
