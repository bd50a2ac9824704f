// A Bun.serve module for test/core/hub/dispose.test.ts. Usage: bun test/support/core/dispose-server.ts <bus-name> <server|script>
// server: the README's old mistake, `await using` at the top level of a server module; prints "port <n>", and
// every HTTP request answers with the bus's error message. script: `await using` in a script that ends.
import { SlotBus } from "../../../src/index.ts"

const [name, mode] = process.argv.slice(2)
if (!name || !mode) throw new Error("usage: dispose-server.ts <bus-name> <server|script>")

await using bus = await SlotBus.listen(name)
if (mode === "server") {
  const server = Bun.serve({
    port: 0,
    fetch: async () => {
      try {
        return await bus.fetch(new Request("http://x/"))
      } catch (e) {
        return new Response((e as Error).message, { status: 503 })
      }
    },
  })
  console.log(`port ${server.port}`)
} else console.log("script done")
