// A hub at its open-file limit, for the EMFILE test of test/core/hub/fds.test.ts. Usage (under `ulimit -n`):
//   bun test/support/core/fd-front.ts <bus-name> <free fds>
// Listens, then opens /dev/null until the kernel says EMFILE and closes <free fds> of them again: the workers that
// fit in those connect, the others meet EMFILE at accept. Prints "ready"; on stdin, "call" asks every worker it has
// (one raw call each) and prints "served <workers> <answers>".
import { closeSync, openSync } from "node:fs"
import { SlotBus } from "../../../src/index.ts"

const [name, free] = process.argv.slice(2)
if (!name || !free) throw new Error("usage: fd-front.ts <bus-name> <free fds>")
const bus = await SlotBus.listen(name)
const held: number[] = []
try {
  for (;;) held.push(openSync("/dev/null", "r"))
} catch (e) {
  if ((e as NodeJS.ErrnoException).code !== "EMFILE") throw e
}
for (const fd of held.splice(0, Number(free))) closeSync(fd)
console.log("ready")
for await (const line of console) {
  if (line !== "call") continue
  const answers = await Promise.all(
    bus.workers.map(() =>
      bus.call("ping").then(
        () => 1,
        () => 0,
      ),
    ),
  )
  console.log(`served ${bus.workerCount} ${answers.reduce((a: number, b) => a + b, 0)}`)
}
