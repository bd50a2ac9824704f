// A front for Node 26 on Hono's Node server (@hono/node-server), built to JavaScript by test/support/runtime/node.ts.
// Usage: node node-hono-front.js <bus-name>. Listens as <bus-name> and serves every HTTP request with
// `serve({ fetch: (req) => bus.fetch(req).catch(failureResponse) })`. Driven over stdin as front-loop.ts says.
import type { Server } from "node:http"
import { serve } from "@hono/node-server"
// a namespace: a build of this file for the code before failureResponse still runs
import * as slotbus from "../../../src/index.ts"
import { runFront } from "./front-loop.ts"

const name = process.argv[2]
if (!name) throw new Error("usage: node-hono-front.js <bus-name>")
const bus = await slotbus.SlotBus.listen(name)
const server = serve({ fetch: (req) => bus.fetch(req).catch(slotbus.failureResponse), port: 0, hostname: "127.0.0.1" })
await runFront(bus, server as Server)
