// For test/core/ops/front-parent.test.ts: argv[2] is a pid. Asks parentAlive(pid) over and over until kill(pid, 0)
// says it is gone, then prints how often it answered alive after it had answered gone once (each a wrong answer:
// a process does not come back).
import { parentAlive } from "../../../src/core/ops/front-parent.ts"

const pid = Number(process.argv[2])
let goneOnce = false
let wrong = 0
let asked = 0
console.log("watching")
for (;;) {
  asked++
  if (!parentAlive(pid)) goneOnce = true
  else if (goneOnce) wrong++
  try {
    process.kill(pid, 0)
  } catch {
    if (asked > 1) break
  }
}
console.log(JSON.stringify({ asked, wrong }))
