// `slotbus status` run as the user runs it (bin/slotbus.ts in a process of its own), and the answers a hostile
// server gives it: bodies that never end or are huge, and text that holds terminal escapes.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { REPO } from "../helpers.ts"

const CLI = join(REPO, "bin", "slotbus.ts")

export interface CliRun {
  code: number
  stdout: Uint8Array
  stderr: string
  /**
   * The process's peak resident set (VmHWM), read from /proc while it ran. Not getrusage: Linux carries the
   * spawning test process's own peak into a child's ru_maxrss across exec.
   */
  maxRssBytes: number
}

/** Runs `slotbus status …args` to its end (killed after `guardMs`, a hang guard), with its output as bytes. */
export async function statusCli(args: string[], guardMs = 60_000): Promise<CliRun> {
  const p = Bun.spawn([process.execPath, CLI, "status", ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const guard = setTimeout(() => p.kill("SIGKILL"), guardMs)
  let maxRssBytes = 0
  const sample = setInterval(() => {
    try {
      const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.pid}/status`, "utf8"))?.[1]
      if (kb) maxRssBytes = Math.max(maxRssBytes, Number(kb) * 1024)
    } catch {} // exited meanwhile
  }, 10)
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(p.stdout).bytes(),
      new Response(p.stderr).text(),
      p.exited,
    ])
    return { code, stdout, stderr, maxRssBytes }
  } finally {
    clearInterval(sample)
    clearTimeout(guard)
    p.kill("SIGKILL")
    await p.exited
  }
}

/**
 * The control characters in `out` that are not a newline: C0 and DEL as bytes, C1 (U+0080–U+009F) as the
 * characters of the UTF-8 text. A terminal acts on any of them.
 */
export function controlsIn(out: Uint8Array): string[] {
  const found: string[] = []
  for (const b of out) if ((b < 0x20 && b !== 0x0a) || b === 0x7f) found.push(`0x${b.toString(16).padStart(2, "0")}`)
  for (const c of new TextDecoder().decode(out)) {
    const n = c.codePointAt(0)!
    if (n >= 0x80 && n <= 0x9f) found.push(`U+${n.toString(16).padStart(4, "0")}`)
  }
  return found
}

const CHUNK = new Uint8Array(64 * 1024).fill(0x20)

/** A body of 64 KiB chunks as fast as it is read, ending after `bytes` (never, by default). */
export function flood(bytes = Number.POSITIVE_INFINITY): ReadableStream<Uint8Array> {
  let sent = 0
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (sent >= bytes) return c.close()
        sent += CHUNK.length
        c.enqueue(CHUNK)
      },
    },
    { highWaterMark: 0 },
  )
}

/** A body that never ends and never grows much: one byte every 100 ms. */
export function trickle(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        await Bun.sleep(100)
        c.enqueue(CHUNK.subarray(0, 1))
      },
    },
    { highWaterMark: 0 },
  )
}

/** Control characters a hostile value carries: CSI clear screen, SGR red, an OSC title, BEL, a C1 CSI, DEL, NUL. */
export const ESCAPES = "\x1b[2J\x1b[31m\x1b]0;pwned\x07\u009b2J\x7f\x00"
