// A handler's answer to come may be any thenable, not only a native Promise: it is awaited the same way over shared
// memory and over NATS (as `await` would), its value answered and its rejection an error answer.
import { describe, expect, test } from "bun:test"
import {
  RemoteError,
  SlotBus,
  SlotWorker,
  type ConnectOptions,
  type ListenOptions,
  type SlotReply,
} from "../../../src/index.ts"
import { nats as viaNats } from "../../../src/nats/index.ts"
import { busName, rejection } from "../../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../../support/nats.ts"

const skip = natsSkipReason()
const nats = natsPerFile(skip)

// Not a Promise: a plain object with then(), as some libraries return.
type Settle = (ok: (v: SlotReply) => void, fail: (e: unknown) => void) => void
const thenable = (settle: Settle) =>
  ({
    // biome-ignore lint/suspicious/noThenProperty: a thenable that is not a Promise is what this test is about
    then: (ok: (v: SlotReply) => void, fail: (e: unknown) => void) => void setTimeout(() => settle(ok, fail), 5),
  }) as unknown as PromiseLike<SlotReply>

describe.each([
  ["shared memory", () => ({}), () => ({})],
  [
    "NATS",
    () => ({ remote: viaNats(nats.url), heartbeatMs: 100 }),
    () => ({ remote: viaNats(nats.url), heartbeatMs: 100 }),
  ],
] as [string, () => ListenOptions, () => ConnectOptions & { fetch?: false }][])(
  "over %s",
  (over, hubOpts, workerOpts) => {
    test.skipIf(over === "NATS" && skip !== null)(
      "a handler's thenable is awaited: its value is the answer, its rejection an error answer",
      async () => {
        await using bus = await SlotBus.listen(busName("thenable"), hubOpts())
        const worker = await SlotWorker.connect(
          bus.name,
          (req) =>
            thenable((ok, fail) =>
              req.path === "/fail"
                ? fail(new RangeError("the thenable failed"))
                : ok({ status: 201, body: "from a thenable" }),
            ),
          workerOpts(),
        )
        try {
          await bus.waitForWorkers(1)
          const res = await bus.request({ path: "/" }, { timeoutMs: 5000 })
          expect([res.status, res.text()]).toEqual([201, "from a thenable"])
          const err = await rejection(bus.request({ path: "/fail" }, { timeoutMs: 5000 }))
          expect(err).toBeInstanceOf(RemoteError)
          expect((err as RemoteError).remoteName).toBe("RangeError")
        } finally {
          await worker.close({ timeoutMs: 1000 })
        }
      },
      20_000,
    )
  },
)
