// A worker process of `slotbus bench realwork`, answering /page/<id>, /cached/<id> and /thumb/<id> (render.ts) in
// one of three roles:
//   bun bench/realwork/worker.ts rpc <bus> [root]     SlotWorker.expose({ renderPage, cachedPage }), thumbs by its
//                                                     handler
//   bun bench/realwork/worker.ts fetch <bus> [root]   SlotWorker.connect(…, { fetch: true, idle: idle() }): a Response
//                                                     for every route
//   bun bench/realwork/worker.ts serve                Bun.serve on 127.0.0.1, printing "port <n>"; ends with its stdin
//   bun bench/realwork/worker.ts cluster [port]       the same with reusePort: true, on `port` (default a new one):
//                                                     one of several processes sharing a port, the kernel dealing
//                                                     out connections (Bun's cluster)
// `root` is the slotbus tree whose library is loaded (default this one): `bench compare` runs two builds this way.
import { join, resolve } from "node:path"
import { idleFromEnv } from "../lib/idle-env.ts"
import { answer, cachedPage, renderPage } from "./render.ts"

type Core = typeof import("../../src/index.ts")

export const api = { renderPage, cachedPage }
export type RenderApi = typeof api

const [role, bus, root] = process.argv.slice(2)
const idle = () => idleFromEnv("SLOTBUS_REALWORK_IDLE") // as front.ts
const lib = (): Promise<Core> => import(join(resolve(root ?? join(import.meta.dir, "../..")), "src/index.ts"))

if (role === "rpc") {
  const { SlotWorker } = await lib()
  const worker = await SlotWorker.expose(bus!, api, { handler: (req) => answer(req.path), idle: idle() })
  await worker.closed // with its hub
  process.exit(0)
} else if (role === "fetch") {
  const { SlotWorker } = await lib()
  const worker = await SlotWorker.connect(bus!, (req: Request) => answer(new URL(req.url).pathname), {
    fetch: true,
    idle: idle(),
  })
  await worker.closed
  process.exit(0)
} else if (role === "serve" || role === "cluster") {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: role === "cluster" ? Number(bus ?? 0) : 0,
    reusePort: role === "cluster",
    fetch: (req) => answer(new URL(req.url).pathname),
  })
  console.log(`port ${server.port}`)
  for await (const _ of Bun.stdin.stream()); // the front ended (or was killed): so does this
  process.exit(0)
} else if (import.meta.main) {
  console.error("usage: bun bench/realwork/worker.ts rpc|fetch <bus> [root] | serve | cluster [port]")
  process.exit(2)
}
