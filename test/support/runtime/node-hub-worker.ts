// A hub worker that runs under Bun and under Node (built by node.ts), for test/runtime/node-hub.test.ts.
// Usage: node-hub-worker.js <hub-url> <name> <token-file> [release-file]. Prints "ready <pid>" once registered, "hang"
// when GET /hang starts, "held <body>" when POST /hold starts. Routes: GET /items/:id (JSON), POST /echo (the body back,
// x-sha256 its digest), GET /large?bytes=N, GET /cookies (two Set-Cookie), SSE /sessions/:id/events (a "welcome" event,
// then POST /emit/:type's events), POST /hold (201 with the body, once release-file exists).
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { hubWorker } from "../../../src/http/index.ts"

const [hubUrl, name, tokenFile, releaseFile] = process.argv.slice(2)
if (!hubUrl || !name || !tokenFile)
  throw new Error("usage: node-hub-worker.ts <hub-url> <name> <token-file> [release-file]")
const app = hubWorker(hubUrl, name, { tokenFile, maxBackoffMs: 500 })
app
  .post("/hold", async (req) => {
    const body = await req.text()
    console.log(`held ${body}`)
    while (!existsSync(releaseFile ?? "")) await new Promise((r) => setTimeout(r, 10))
    return new Response(body, { status: 201 })
  })
  .get("/items/:id", (req) => Response.json({ id: req.params.id, runtime: process.versions.bun ? "bun" : "node" }))
  .post("/echo", async (req) => {
    const body = await req.bytes()
    return new Response(body, { headers: { "x-sha256": createHash("sha256").update(body).digest("hex") } })
  })
  .get("/large", (req) => {
    const n = Number(req.query.get("bytes") ?? 0)
    const data = new Uint8Array(n)
    for (let i = 0; i < n; i++) data[i] = (i * 31) & 255
    return new Response(data)
  })
  .get("/hang", () => {
    console.log("hang")
    return new Promise<Response>(() => {})
  })
  .get("/cookies", () => {
    const h = new Headers()
    h.append("set-cookie", "a=1; Path=/")
    h.append("set-cookie", "b=2; Path=/")
    return new Response("cookies", { headers: h })
  })
  .post("/emit/:type", async (req) => Response.json({ id: await app.emit(req.params.type!, await req.json()) }))
  .sse("/sessions/:id/events", (conn) => {
    void conn.send({ session: conn.params.id }, { event: "welcome" })
  })
await app.run()
process.on("SIGTERM", () => void app.close())
console.log(`ready ${process.pid}`)
await app.closed
process.exit(0)
