// Route params are typed from the pattern, as Hono and Elysia do. tsc checks this file (`npm test`), and each
// expect-error line below fails the type check if the wrong access it marks stops being an error.
import { expect, expectTypeOf, test } from "bun:test"
import { hubWorker, type HubRequest, type Params, type RouteParams, type SseConnection } from "../../src/http/index.ts"

test("params are typed from the pattern: names, a trailing *, and plain Params for a non-literal pattern", () => {
  expectTypeOf<RouteParams<"/items/:id">>().toEqualTypeOf<{ id: string }>()
  expectTypeOf<RouteParams<"/users/:user/posts/:post">>().toEqualTypeOf<{ user: string; post: string }>()
  expectTypeOf<RouteParams<"/files/:bucket/*">>().toEqualTypeOf<{ bucket: string; "*": string }>()
  expectTypeOf<RouteParams<"/health-check">>().toEqualTypeOf<{}>()
  expectTypeOf<RouteParams<string>>().toEqualTypeOf<Params>()

  const app = hubWorker("http://127.0.0.1:1", "typed")
  app.get("/items/:id", (req) => {
    expectTypeOf(req).toEqualTypeOf<HubRequest<{ id: string }>>()
    expectTypeOf(req.params.id).toBeString()
    // @ts-expect-error: "/items/:id" has no :name
    void req.params.name
    return new Response(req.params.id)
  })
  app.post("/users/:user/posts/:post", (req) => Response.json({ user: req.params.user, post: req.params.post }))
  app.get("/files/*", (req) => new Response(req.params["*"]))
  app.sse("/sessions/:id/events", (conn) => {
    expectTypeOf(conn).toEqualTypeOf<SseConnection<{ id: string }>>()
    // @ts-expect-error: "/sessions/:id/events" has no :user
    void conn.params.user
  })
  const pattern: string = "/dynamic/:x"
  app.get(pattern, (req) => new Response(req.params.anything ?? "")) // a pattern known only at run time: Params
  expect(app.state).toBe("idle")
})
