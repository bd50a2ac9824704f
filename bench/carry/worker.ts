// A worker process of `slotbus bench carry`, answering /small/<id> and /page/<id> (lib/answers.ts) in one role:
//   bun bench/carry/worker.ts fetch <bus> [root]    SlotWorker.connect(…, { fetch: true }): a Response per request
//   bun bench/carry/worker.ts rpc <bus> [root]      SlotWorker.expose({ small, page })
//   bun bench/carry/worker.ts plain <bus> [root]    SlotWorker.connect with a plain handler: for bus.request
//                                                   { status, headers, body: string }, for bus.call the body alone
//   bun bench/carry/worker.ts hub <url> <tokenFile> [root]  hubWorker (slotbus/http) with the two routes; "ready"
//   bun bench/carry/worker.ts serve [port]          its own Bun.serve on 127.0.0.1 (fetch proxy), or on `port` shared
//                                                   with reusePort (reuse); "port <n>"
// The hub and serve roles end with their stdin (the front ended or was killed); the others with their bus.
// `root` is the slotbus tree whose library is loaded (default this one): `bench compare` runs two builds this way.
import { join, resolve } from "node:path"
import { idleFromEnv } from "../lib/idle-env.ts"
import { answer, bodyOf, HTML_TYPE, JSON_TYPE, page, route, small } from "../lib/answers.ts"

type Core = typeof import("../../src/index.ts")
type Http = typeof import("../../src/http/index.ts")

const [role, ...args] = process.argv.slice(2)
const lib = (root: string | undefined, entry: string) =>
  import(join(resolve(root ?? join(import.meta.dir, "../..")), entry))

const untilStdinEnds = async () => {
  for await (const _ of Bun.stdin.stream());
  process.exit(0)
}

const idle = idleFromEnv("SLOTBUS_CARRY_IDLE") // docs/perf's runs: the front's strategy, on this side too

if (role === "fetch" || role === "rpc" || role === "plain") {
  const [bus, root] = args
  const { SlotWorker } = (await lib(root, "src/index.ts")) as Core
  const worker =
    role === "fetch"
      ? await SlotWorker.connect(bus!, (req: Request) => answer(new URL(req.url).pathname), { fetch: true, idle })
      : role === "rpc"
        ? await SlotWorker.expose(bus!, { small, page }, { idle })
        : await SlotWorker.connect(
            bus!,
            (req) => {
              if (req.kind === "raw") return bodyOf(req.text()) ?? ""
              const r = route(req.path)
              if (!r) return { status: 404, body: "not found" }
              return { status: 200, headers: r.answer === "small" ? JSON_TYPE : HTML_TYPE, body: bodyOf(req.path)! }
            },
            { idle },
          )
  await worker.closed // with its bus
  process.exit(0)
} else if (role === "hub") {
  const [url, tokenFile, root] = args
  const { hubWorker } = (await lib(root, "src/http/index.ts")) as Http
  const app = hubWorker(url!, "carry", { tokenFile, ...(idle && { idle }) })
  app.get("/small/:id", (req) => answer(`/small/${req.params.id}`))
  app.get("/page/:id", (req) => answer(`/page/${req.params.id}`))
  await app.run()
  console.log("ready")
  await untilStdinEnds()
} else if (role === "serve") {
  const port = Number(args[0] ?? 0)
  const fetch = (req: Request) => answer(new URL(req.url).pathname)
  const server = Bun.serve({ hostname: "127.0.0.1", port, reusePort: port !== 0, fetch })
  console.log(`port ${server.port}`)
  await untilStdinEnds()
} else {
  console.error(
    "usage: bun bench/carry/worker.ts fetch|rpc|plain <bus> [root] | hub <url> <tokenFile> [root] | serve [port]",
  )
  process.exit(2)
}
