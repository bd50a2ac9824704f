// An app that serves no status, for `slotbus ls|top|requests` (test/status/host-cli.test.ts). Usage:
//   bun test/support/status/host-app.ts front <name> --workers=N [--fast=M] [--slow=S] [--hold=K] [--shared]
//     listens on bus <name> (1 slot per worker; --shared: as one of its shared fronts), opens topic and contest <name>, waits for N workers, sends M
//     requests GET /fast-<i> and awaits them, then S requests GET /slow-<i> that an echo worker answers after
//     300 ms, awaited too, then K requests GET /hold-<i> that it answers after 60 s; prints "ready" before
//     waiting for workers, "sent" once the holds are out, "failed <path> <error>" for each that fails.
//   bun test/support/status/host-app.ts member <name>
//     joins topic and contest <name>; prints "ready".
import { SlotBus } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"
import { Contest } from "../../../src/leases/index.ts"

const [mode, name, ...flags] = process.argv.slice(2)
if (!name || (mode !== "front" && mode !== "member")) throw new Error("usage: host-app.ts front|member <name> [flags]")
const flag = (key: string) => Number(flags.find((f) => f.startsWith(`--${key}=`))?.slice(key.length + 3) ?? 0)

const topic = await Topic.open(name)
const contest = await Contest.open(name)
if (mode === "member") {
  console.log("ready")
} else {
  const bus = await SlotBus.listen(name, { slots: 1, timeoutMs: 0, shared: flags.includes("--shared") })
  console.log("ready")
  await bus.waitForWorkers(flag("workers"))
  for (let i = 0; i < flag("fast"); i++) await bus.request({ method: "GET", path: `/fast-${i}` })
  for (let i = 0; i < flag("slow"); i++)
    await bus.request({ method: "GET", path: `/slow-${i}`, headers: { "x-delay-ms": "300" } })
  for (let i = 0; i < flag("hold"); i++)
    bus
      .request({ method: "GET", path: `/hold-${i}`, headers: { "x-delay-ms": "60000" } })
      .catch((e) => console.log(`failed /hold-${i} ${(e as Error).name}`))
  console.log("sent")
}
setInterval(() => [topic, contest], 1000)
