// `slotbus hub --spawn` of workers that hold each POST /hold until a release file exists (they print "held <body>",
// then answer 201 with the body; "ready <pid>" once joined; no SIGTERM handler, as hubWorker's README example), for
// the tests of what a reload or a stop does to requests a worker holds (test/http/hub-reload, hub-stop); and a request
// whose body comes in two halves, for what a stop does to one still uploading.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { alive, freePort, spawn, until } from "../helpers.ts"

const ROOT = join(import.meta.dir, "..", "..", "..")

/** `detached`: the hub leads a process group of its own (a shell's job), for a Ctrl-C to that group. */
export async function heldHub(opts: { instance?: string; instances?: number; detached?: boolean }) {
  const dir = mkdtempSync(join(tmpdir(), "held-hub-"))
  const release = join(dir, "release")
  const worker = join(dir, "worker.ts")
  const instance = opts.instance ? `, { instance: ${JSON.stringify(opts.instance)} }` : ""
  writeFileSync(
    worker,
    `import { existsSync } from "node:fs"
import { hubWorker } from ${JSON.stringify(join(ROOT, "src", "http", "index.ts"))}
const app = hubWorker(process.env.SLOTBUS_HUB_URL!, "shop"${instance})
app.post("/hold", async (req) => {
  const body = await req.text()
  console.log(\`held \${body}\`)
  while (!existsSync(${JSON.stringify(release)})) await Bun.sleep(10)
  return new Response(body, { status: 201 })
})
app.get("/ping", () => new Response("pong"))
await app.run()
console.log(\`ready \${process.pid}\`)
`,
  )
  const url = `http://127.0.0.1:${await freePort()}`
  const hub = spawn(
    [
      process.execPath,
      join(ROOT, "bin", "slotbus.ts"),
      ...["hub", "--port", new URL(url).port, "--token-file", join(dir, "hub.token")],
      ...["--spawn", `${process.execPath} ${worker}`, "--instances", String(opts.instances ?? 1)],
    ],
    { detached: opts.detached },
  )
  return {
    url,
    hub,
    /** The pids of the workers that said ready, in order. */
    ready: () => hub.lines.flatMap((l) => /^\[[\w-]+#\d pid (\d+)\] ready \1$/.exec(l)?.[1] ?? []).map(Number),
    /** Requests the workers hold now or held. */
    held: () => hub.lines.filter((l) => / held \d+$/.test(l)).length,
    /** POST /hold with body i: "<status> <body>", or the fetch's error. */
    hold: (i: number) =>
      fetch(`${url}/hold`, { method: "POST", body: String(i) }).then(
        async (r) => `${r.status} ${await r.text()}`,
        (e: Error) => `${e.name}: ${e.message}`,
      ),
    release: () => writeFileSync(release, ""),
    /** Releases what is held, kills the hub and every process it named (a failed run's workers), removes the files. */
    async end() {
      if (!existsSync(release)) writeFileSync(release, "")
      await hub.kill()
      const pids = new Set(hub.lines.flatMap((l) => [...l.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]))))
      for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL")
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A POST of `2 × half` to `url`'s `path` over a raw connection, of which the head and the first half are sent now;
 * `finish()` sends the rest and resolves with what came back (the whole answer, or what came before the connection
 * ended).
 */
export async function halfUpload(url: string, path: string, half: string) {
  const socket = connect(Number(new URL(url).port), "127.0.0.1")
  let answer = ""
  socket.on("data", (d) => (answer += d.toString("latin1")))
  const closed = new Promise((done) => socket.on("close", done))
  socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: ${2 * half.length}\r\n\r\n${half}`)
  await sleep(200) // the server has the head and half the body
  return {
    async finish(): Promise<string> {
      socket.write(half)
      const whole = until(() => answer.endsWith(half + half), "the answer", 20_000)
      await Promise.race([closed, whole.catch(() => {})])
      socket.destroy()
      return answer
    },
  }
}
