// What a fetch-mode worker pays to take a handler's Response body whole, Bun 1.4.5, no slotbus:
//   bun docs/perf/response-body.ts
// A small JSON answer and a 40 KB page, each through the body's stream (what a worker must do while nothing tells a
// string or bytes body from a user's stream without consuming it), through bytes(), and the floor: the page's
// string encoded straight into a buffer. docs/perf/real-work.md, round twelve.
const page = `<html>${"x".repeat(40_000)}é</html>`
const small = { id: 7, name: "item 7", tags: ["a", "b"], price: 12.5 }
const headers = { "content-type": "text/html" }
const into = new Uint8Array(65_536)

async function readStream(res: Response) {
  const reader = res.body!.getReader()
  for (let at = 0; ; ) {
    const r = await reader.read()
    if (r.done) return at
    into.set(r.value, at)
    at += r.value.length
  }
}

async function time(name: string, n: number, f: () => unknown) {
  for (let i = 0; i < n / 10; i++) await f()
  const t = Bun.nanoseconds()
  for (let i = 0; i < n; i++) await f()
  console.log(`${name.padEnd(40)} ${((Bun.nanoseconds() - t) / n / 1000).toFixed(2)} µs`)
}

await time("small: Response.json", 200_000, () => Response.json(small))
await time("small: through its stream", 200_000, () => readStream(Response.json(small)))
await time("small: bytes()", 200_000, async () => into.set(await Response.json(small).bytes()))
await time("page: new Response", 50_000, () => new Response(page, { headers }))
await time("page: the body getter alone", 50_000, () => new Response(page, { headers }).body)
await time("page: through its stream", 50_000, () => readStream(new Response(page, { headers })))
await time("page: bytes()", 50_000, async () => into.set(await new Response(page, { headers }).bytes()))
await time("page: its string encoded in place", 50_000, () => new TextEncoder().encodeInto(page, into))
