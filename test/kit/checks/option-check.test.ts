// kit/checks/option-check.ts: the one check of every public options object (issue 19). The table of every entry point
// that uses it is test/options.test.ts; this is the rule itself.
import { describe, expect, test } from "bun:test"
import { checkOptions, didYouMean, optionNames } from "../../../src/kit/index.ts"

const HUB = ["port", "hostname", "token", "tokenFile", "timeoutMs", "slots", "idle", "heartbeatMs"]

describe("did you mean", () => {
  test.each([
    ["prot", "port"], // a swap of neighbours is one edit
    ["tokn", "token"],
    ["hostnme", "hostname"],
    ["TimeoutMS", "timeoutMs"], // case
    ["timeout", "timeoutMs"], // the beginning of a name
    ["timout", "timeoutMs"], // near the beginning of a name
    ["slot", "slots"],
    ["heartbeat", "heartbeatMs"],
    ["portNumber", "port"], // a name it begins with
    ["idel", "idle"],
  ])("%s → %s", (typo, meant) => expect(didYouMean(typo, HUB)).toBe(meant))

  test.each(["verbose", "x", "ab", "queue", "maxWorkers", "pt"])("%s is near nothing: no suggestion", (name) =>
    expect(didYouMean(name, HUB)).toBeUndefined(),
  )

  test("the nearest wins, and a whole name beats a beginning at the same distance", () => {
    expect(didYouMean("tokenfile", HUB)).toBe("tokenFile")
    expect(didYouMean("toke", HUB)).toBe("token")
  })
})

describe("checkOptions", () => {
  const known = new Set(["port", "hostname"])

  test("undefined is {}, a valid object comes back as it is", () => {
    expect(checkOptions(undefined, known, "createHub")).toEqual({})
    const o = { port: 1 }
    expect(checkOptions(o, known, "createHub")).toBe(o)
  })

  test.each([[null], [5], ["port"], [[]], [() => {}]] as const)(
    "%p where an options object belongs is a TypeError listing the names",
    (v) => {
      expect(() => checkOptions(v as never, known, "createHub")).toThrow(TypeError)
      expect(() => checkOptions(v as never, known, "createHub")).toThrow("createHub takes an object { port, hostname }")
    },
  )

  test("an unknown name is a TypeError naming it, the one meant and the valid ones", () => {
    expect(() => checkOptions({ prot: 1 } as never, known, "createHub")).toThrow(
      'createHub: unknown option "prot"; did you mean "port"? the options are port, hostname',
    )
    expect(() => checkOptions({ verbose: true } as never, known, "createHub")).toThrow(
      'createHub: unknown option "verbose"; the options are port, hostname',
    )
  })

  test("an unknown name set to undefined is still refused, and so is an inherited one", () => {
    expect(() => checkOptions({ prot: undefined } as never, known, "x")).toThrow('"prot"')
    expect(() => checkOptions(Object.create({ prot: 1 }), known, "x")).toThrow('"prot"')
  })

  test("a required name left out (or undefined) is a TypeError; the noun names what the names are", () => {
    const rule = new Set(["type", "keys", "fill"])
    const required = { required: ["type", "keys", "fill"], noun: "rule field" }
    expect(() => checkOptions({ type: "t", keys: ["a", "b"] }, rule, "bind", required)).toThrow(
      'bind: the rule field "fill" is required',
    )
    expect(() => checkOptions({ type: "t", keys: [], fill: undefined }, rule, "bind", required)).toThrow(TypeError)
    expect(() => checkOptions({ type: "t", keys: [], fil: "c" }, rule, "bind", required)).toThrow(
      'bind: unknown rule field "fil"; did you mean "fill"? the rule fields are type, keys, fill',
    )
  })

  test("error builds another error class from the problem (the stdio config's StdioConfigError)", () => {
    class ConfigError extends Error {}
    const error = (p: { kind: string; name?: string; suggestion?: string }) =>
      new ConfigError(`${p.kind} ${p.name} ${p.suggestion}`)
    expect(() => checkOptions({ prot: 1 }, known, "x", { error })).toThrow(ConfigError)
    expect(() => checkOptions({ prot: 1 }, known, "x", { error })).toThrow("unknown prot port")
  })

  test("optionNames makes the set from a literal that tsc checks against the interface", () => {
    interface O {
      a?: number
      b: string
    }
    expect([...optionNames<O>({ a: true, b: true })]).toEqual(["a", "b"])
    // @ts-expect-error b is missing: an option added to an interface cannot be forgotten in its set
    optionNames<O>({ a: true })
    // @ts-expect-error c is not an option of O
    optionNames<O>({ a: true, b: true, c: true })
  })
})
