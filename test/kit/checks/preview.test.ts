// preview: a value in an error message (an RPC function's non-Error throw) reads the same from a Bun front and a Node
// front, on one line, and costs the same however large the value is.
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { preview } from "../../../src/kit/checks/preview.ts"
import { REPO } from "../../support/helpers.ts"
import { findNode, NODE_INSTALL, nodeFlags } from "../../support/runtime/node.ts"

// [what, the value as a JS expression (so Node makes the same one), what preview shows]
const CASES: [string, string, string][] = [
  ["a plain object, its string quoted as JSON", `({ a: 1, b: [1, 2], c: "x" })`, `{a: 1, b: [1, 2], c: "x"}`],
  ["an array with null", `[1, "a", null]`, `[1, "a", null]`],
  ["a Map", `new Map([["k", 1]])`, `Map(1) {"k" => 1}`],
  ["a Set", `new Set([1])`, `Set(1) {1}`],
  ["a bigint", `10n`, `10n`],
  ["undefined, NaN, Infinity and -0", `[undefined, NaN, Infinity, -0]`, `[undefined, NaN, Infinity, -0]`],
  ["a Date", `new Date(0)`, `1970-01-01T00:00:00.000Z`],
  ["a typed array", `new Uint8Array([1, 2])`, `Uint8Array(2) [1, 2]`],
  ["two levels deep, then a name", `({ a: { b: { c: { d: 1 } } } })`, `{a: {b: [Object]}}`],
  ["a null-prototype object, as a plain one", `Object.assign(Object.create(null), { q: 1 })`, `{q: 1}`],
  ["a key that is no identifier, quoted", `({ "a-b": 1, "": 2 })`, `{"a-b": 1, "": 2}`],
  ["an Error inside, its name and message", `[new TypeError("boom")]`, `[[TypeError: boom]]`],
  ["a cycle", `(() => { const o = { a: 1 }; o.self = o; return o })()`, `{a: 1, self: [Circular]}`],
  ["a control character, escaped as JSON does", `"a\\u001b[2Jb"`, `"a\\u001b[2Jb"`],
  ["a long string, cut", `"x".repeat(500)`, `"${"x".repeat(116)}...`],
  ["a long array, cut", `Array.from({ length: 1000 }, (_, i) => i)`, `[${[...Array(32).keys()].join(", ")}...`],
]

describe("preview", () => {
  test.each(CASES)("%s", (_, source, want) => {
    const got = preview(new Function(`return ${source}`)())
    expect(got).toBe(want)
    expect(got.length).toBeLessThanOrEqual(120)
    expect(got).not.toContain("\n")
  })

  test("a value of a million items is read only as far as the line goes", () => {
    let reads = 0
    const items = new Proxy(
      Array.from({ length: 1_000_000 }, () => ({ n: 1 })),
      {
        get(target, key, receiver) {
          if (typeof key === "string" && /^\d+$/.test(key)) reads++
          return Reflect.get(target, key, receiver)
        },
      },
    )
    const keys = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]))
    expect(preview(items)).toEndWith("...")
    expect(reads).toBeLessThan(30) // "{n: 1}, " is 8 characters: 120 of them hold 15
    expect(preview(keys).length).toBe(120)
    expect(preview({ big: "y".repeat(10_000_000) }).length).toBe(120)
  })

  test("Node shows every value as Bun does", () => {
    const node = findNode()
    if (!node) return console.log(`skipped: no Node >= 26.1 here (${NODE_INSTALL})`)
    const script = `
      const { preview } = await import(${JSON.stringify(join(REPO, "src/kit/checks/preview.ts"))})
      const sources = JSON.parse(process.argv[1])
      console.log(JSON.stringify(sources.map((s) => preview(new Function("return " + s)()))))`
    const sources = JSON.stringify(CASES.map((c) => c[1]))
    const r = Bun.spawnSync([node, ...nodeFlags(node), "--input-type=module", "-e", script, sources])
    expect(r.exitCode).toBe(0)
    expect(JSON.parse(r.stdout.toString())).toEqual(CASES.map((c) => c[2]))
  })
})
