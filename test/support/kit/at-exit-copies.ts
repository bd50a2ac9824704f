// Two copies of src/kit/basics/at-exit.ts in one process, as `bun --hot` makes when it runs the modules again, for
// test/kit/basics/at-exit.test.ts. Each copy gets a drain (prints "drained <copy>") and something to let go of
// (prints "let go <copy>"). Prints "ready" once both are registered; it never exits by itself.
import * as one from "../../../src/kit/basics/at-exit.ts"

const again: string = "../../../src/kit/basics/at-exit.ts?copy=2" // a query makes it another module
const two = (await import(again)) as typeof one
if (one === two) throw new Error("one copy only: the runtime gave the same module twice")
for (const [copy, m] of [
  ["one", one],
  ["two", two],
] as const) {
  m.drainBeforeStop(async () => console.log(`drained ${copy}`))
  m.closeAtExit({ close: () => console.log(`let go ${copy}`) })
}
setInterval(() => {}, 1000)
console.log("ready")
