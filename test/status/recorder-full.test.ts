// A full /dev/shm and the flight recorder (docs/PROTOCOL.md §16.1): tmpfs gives a file's page on its first write,
// so a file only sized and mapped faults (SIGBUS) when there is no page left. Each test runs a real front with two
// workers in a mount namespace of its own, whose /dev/shm is a small tmpfs filled up to what the test leaves free.
// The slot regions of the Linux backend are memfds (the kernel's internal tmpfs, not /dev/shm): they still serve.
// The portable backend's are /dev/shm files (§13.3), 4 GiB sparse, which no reservation can cover: these tests
// pin the Linux backend, whatever SLOTBUS_PLATFORM the suite runs with.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { busName, FIXTURES, spawn, stopAll } from "../support/helpers.ts"

const FRONT = join(FIXTURES, "status/recorder-front.ts")
const SHM_BYTES = 256 * 1024
const unshare = Bun.which("unshare")

function whyNoNamespace(): string | null {
  if (process.getuid?.() !== 0) return `needs root to mount a tmpfs of its own (running as uid ${process.getuid?.()})`
  if (!unshare) return "needs unshare (util-linux) for a mount namespace of its own"
  const probe = Bun.spawnSync([unshare, "-m", "--propagation", "private", "true"], { stderr: "pipe" })
  return probe.exitCode === 0 ? null : `unshare -m failed here: ${probe.stderr.toString().trim()}`
}
const skip = whyNoNamespace()
if (skip) console.warn(`skipping the full /dev/shm tests: ${skip}`)

afterEach(stopAll) // the namespace and its tmpfs end with the front (exec'd in it) and its workers

/** recorder-front.ts in a mount namespace of its own whose /dev/shm has `free` bytes left. */
function frontInSmallShm(name: string, free: number) {
  const fill = `mount -t tmpfs -o size=${SHM_BYTES} tmpfs /dev/shm && head -c ${SHM_BYTES - free} /dev/zero >/dev/shm/fill`
  const script = `${fill} && df -B1 --output=avail /dev/shm | tail -1 && exec "$0" "$@"`
  const args = [process.execPath, FRONT, name, "100"]
  return spawn([unshare!, "-m", "--propagation", "private", "sh", "-c", script, ...args], {
    env: { ...process.env, SLOTBUS_PLATFORM: "linux" },
  })
}

describe.skipIf(skip !== null)("a front whose /dev/shm is full", () => {
  test.each([
    ["no page left: the recorder's header would fault at listen", 0],
    ["two pages left: both buses' headers fit, the first request's record would fault", 8192],
  ])(
    "%s; it serves its workers' requests without a recorder and says so once",
    async (_, free) => {
      const front = frontInSmallShm(busName("full"), free)
      const [avail] = await front.waitLine(/^\s*\d+$/) // the tmpfs is mounted and filled
      expect(Number(avail)).toBe(free)
      await front.whileAlive(front.waitLine(/^answered 100 pid \d+$/, 30_000), "the front")
      expect(await front.stop(10_000)).toBe(0)
      const warnings = front.stderr.split("\n").filter((l) => l.includes("runs without its flight recorder"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("ENOSPC")
    },
    60_000,
  )
})
