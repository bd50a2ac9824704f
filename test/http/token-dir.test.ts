// Where the hub writes its token by default: never a name in /tmp that another uid could make first. A squatter of
// /tmp/slotbus-hub-<port>.token (a directory, or a file of its own) once kept a hub from starting on that port.
import { afterAll, afterEach, expect, test } from "bun:test"
import { lstatSync, rmSync } from "node:fs"
import { dirname } from "node:path"
import { createHub } from "../../src/http/index.ts"
import { socketDirectory } from "../../src/native/socket-dir.ts"
import { freePort, stopAll } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"
import { asNobody, NOBODY, whyNotAsNobody } from "../support/uid.ts"

afterAll(stopAll)

const xdgBefore = process.env.XDG_RUNTIME_DIR
const squats: string[] = []
afterEach(() => {
  if (xdgBefore === undefined) delete process.env.XDG_RUNTIME_DIR
  else process.env.XDG_RUNTIME_DIR = xdgBefore
  for (const p of squats.splice(0)) rmSync(p, { recursive: true, force: true })
})

/** `path` made first by uid nobody: a directory, or a file of its (mode 0644). */
function squat(path: string, as: "dir" | "file") {
  squats.push(path)
  const made = Bun.spawnSync(asNobody(as === "dir" ? ["mkdir", path] : ["sh", "-c", `echo guess > ${path}`]))
  if (made.exitCode !== 0) throw new Error(`cannot squat ${path}: ${made.stderr.toString()}`)
  expect(lstatSync(path).uid).toBe(NOBODY)
}

const skip = whyNotAsNobody(import.meta.path)

for (const [as, xdg] of [
  ["dir", undefined],
  ["file", "/tmp"],
] as const) {
  test.skipIf(skip !== null)(
    `another uid's ${as} at /tmp/slotbus-hub-<port>.token does not stop a hub (XDG_RUNTIME_DIR ${xdg ?? "unset"}): the token goes in the socket directory, workers find it`,
    async () => {
      if (xdg)
        process.env.XDG_RUNTIME_DIR = xdg // not this user's 0700 directory: not used
      else delete process.env.XDG_RUNTIME_DIR
      const port = await freePort()
      const squatted = `/tmp/slotbus-hub-${port}.token`
      squat(squatted, as)
      const hub = await createHub({ port, quiet: true })
      try {
        expect(dirname(hub.tokenFile)).toBe(await socketDirectory())
        const st = lstatSync(hub.tokenFile)
        expect(st.isFile() && st.uid === process.getuid?.() && (st.mode & 0o777) === 0o600).toBe(true)
        const worker = await startWorker(hub.url, "shop") // reads the default file for the port, as the hub wrote it
        const res = await fetch(`${hub.url}/items/7`)
        expect(res.status).toBe(200)
        expect(await res.json()).toMatchObject({ id: "7" })
        await worker.kill()
      } finally {
        await hub.close()
      }
      expect(lstatSync(squatted).uid).toBe(NOBODY) // the squat is left as it was
      expect(() => lstatSync(hub.tokenFile)).toThrow() // the hub's own file goes with it
    },
  )
}
