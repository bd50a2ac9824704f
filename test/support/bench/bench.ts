// What the tests of the bench commands share.
import { expect, test } from "bun:test"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

/** `slotbus bench <name> <argv>` is a usage error (main returns 2) for each argv; what it prints is hushed. */
export function usageErrors(name: string, main: (argv: string[]) => Promise<number>, argvs: string[][]) {
  test.each(argvs.map((a) => [a]))(`slotbus bench ${name} %p is a usage error (exit 2)`, async (argv: string[]) => {
    const err = console.error
    console.error = () => {}
    try {
      expect(await main(argv)).toBe(2)
    } finally {
      console.error = err
    }
  })
}

/** The command lines of processes running a file of this checkout's bench/<room> (fronts, workers left behind). */
export function benchProcesses(room: string): string[] {
  const dir = join(import.meta.dir, "..", "..", "..", "bench", room)
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ")
      } catch {
        return ""
      }
    })
    .filter((c) => c.includes(dir))
}

/** The command lines of processes whose environment holds `name=value`: what one test's bench run left behind. */
export function processesWithEnv(name: string, value: string): string[] {
  const mark = `${name}=${value}`
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, "utf8").split("\0").includes(mark)
      } catch {
        return false
      }
    })
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ")
      } catch {
        return `pid ${p}`
      }
    })
}
