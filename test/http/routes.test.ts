import { describe, expect, test } from "bun:test"
import { RouteError } from "../../src/http/index.ts"
import { parseRoute, RouteTable } from "../../src/http/routes.ts"
import { sseFrame } from "../../src/http/hub/sse-stream.ts"

function table(...routes: [string, string][]) {
  const t = new RouteTable<string>()
  for (const [m, p] of routes) t.add(parseRoute(m, p), `${m} ${p}`)
  return t
}

describe("route patterns", () => {
  test.each([
    ["/items/:id", "/items/42", { id: "42" }],
    ["/items/:id", "/items/a%20b", { id: "a b" }],
    ["/users/:user/posts/:post", "/users/ann/posts/7", { user: "ann", post: "7" }],
    ["/files/*", "/files/a/b/c.txt", { "*": "a/b/c.txt" }],
    ["/files/*", "/files", { "*": "" }],
    ["/", "/", {}],
    ["/health-check", "/health-check", {}],
    ["/items/:id", "/items/42/", { id: "42" }],
  ])("%s matches %s with params %j", (pattern, path, params) => {
    const m = table(["GET", pattern]).match("GET", path)
    expect(m && "params" in m ? m.params : null).toEqual(params)
  })

  test.each([
    ["/items/:id", "/items"],
    ["/items/:id", "/items/1/2"],
    ["/items", "/item"],
  ])("%s does not match %s", (pattern, path) => {
    expect(table(["GET", pattern]).match("GET", path)).toBeNull()
  })

  test("static segments beat params, params beat a trailing star, an exact method beats *", () => {
    const t = table(
      ["GET", "/items/*"],
      ["GET", "/items/:id"],
      ["GET", "/items/new"],
      ["*", "/items/:id/raw"],
      ["GET", "/items/:id/raw"],
    )
    const value = (path: string) => {
      const m = t.match("GET", path)
      return m && "value" in m ? m.value : null
    }
    expect(value("/items/new")).toBe("GET /items/new")
    expect(value("/items/7")).toBe("GET /items/:id")
    expect(value("/items/7/x/y")).toBe("GET /items/*")
    expect(value("/items/7/raw")).toBe("GET /items/:id/raw")
  })

  test("a path served only with other methods reports them as allowed", () => {
    expect(table(["POST", "/items"], ["PUT", "/items"]).match("GET", "/items")).toEqual({ allow: ["POST", "PUT"] })
  })

  test("a GET route also answers HEAD", () => {
    expect(table(["GET", "/x"]).match("HEAD", "/x")).toMatchObject({ params: {} })
  })

  test.each([
    ["GET", "items", /must start with "\/"/],
    ["GET", "/a/*/b", /may only end a pattern/],
    ["GET", "/a*", /whole segment/],
    ["GET", "/a/:1x", /JS identifier/],
    ["GET", "/a/:id/:id", /appears twice/],
    ["GET", "/a?b", /no spaces/],
    ["FETCH", "/a", /is not one of/],
    ["GET", "/health", /answers itself/],
    ["GET", "/metrics", /answers itself/],
    ["POST", "/_slotbus/register", /answers itself/],
    ["GET", "/events/:id", /answers itself/],
  ])("%s %s is refused with a RouteError that says what is wrong", (method, pattern, message) => {
    expect(() => parseRoute(method, pattern)).toThrow(RouteError)
    expect(() => parseRoute(method, pattern)).toThrow(message)
  })

  test("routes that differ only in parameter names have the same shape", () => {
    expect(parseRoute("GET", "/items/:id").shape).toBe(parseRoute("GET", "/items/:key").shape)
  })
})

describe("SSE framing", () => {
  test("multi-line data becomes several data lines and newlines cannot break out of event or id", () => {
    const text = new TextDecoder().decode(sseFrame({ event: "a\nb", id: "1\r\n2", data: "x\ny\r\nz" }))
    expect(text).toBe("event: a b\nid: 1  2\ndata: x\ndata: y\ndata: z\n\n")
  })
})
