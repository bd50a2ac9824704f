// kit/basics/emitter.ts: the typed listeners behind Supervisor.on and StdioBus.on.
import { expect, test } from "bun:test"
import { Emitter } from "../../../src/kit/index.ts"

test("listeners get their event's arguments in the order they subscribed, and the returned function unsubscribes", () => {
  const e = new Emitter<{ start: [number]; exit: [number, string] }>()
  const got: string[] = []
  const offA = e.on("start", (n) => got.push(`a${n}`))
  e.on("start", (n) => got.push(`b${n}`))
  e.on("exit", (n, why) => got.push(`exit ${n} ${why}`))
  e.emit("start", 1)
  offA()
  e.emit("start", 2)
  e.emit("exit", 3, "done")
  expect(got).toEqual(["a1", "b1", "b2", "exit 3 done"])
})

test("an event nobody listens to is a no-op", () => {
  expect(() => new Emitter<{ x: [] }>().emit("x")).not.toThrow()
})
