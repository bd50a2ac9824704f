// The stdin verbs node-front.ts and pool-front.ts share: "call <id> <text>" prints "answer <id> <text back>" or
// "failed <id> <error name>" when it settles (calls overlap); "get <id> <path>" sends bus.request({ path }) and prints
// "answer <id> <status>" or "failed <id> <error name>"; "workers" prints "workers <pid>:<in flight>,…".
import type { RequestOptions, SlotBus } from "../../../src/index.ts"

/** Runs `verb` if it is one of these; false when it is not. */
export function busVerb(
  bus: SlotBus,
  verb: string | undefined,
  rest: string[],
  opts?: Pick<RequestOptions, "timeoutMs">,
): boolean {
  if (verb === "call") {
    const [id, ...text] = rest
    void bus.call(text.join(" "), opts).then(
      (b) => console.log(`answer ${id} ${new TextDecoder().decode(b)}`),
      (e: Error) => console.log(`failed ${id} ${e.name}`),
    )
  } else if (verb === "get") {
    const [id, path] = rest
    void bus.request({ path }, opts).then(
      (r) => console.log(`answer ${id} ${r.status}`),
      (e: Error) => console.log(`failed ${id} ${e.name}`),
    )
  } else if (verb === "workers")
    console.log(
      `workers ${bus
        .stats()
        .workers.map((w) => `${w.pid}:${w.inFlight}`)
        .join(",")}`,
    )
  else return false
  return true
}
