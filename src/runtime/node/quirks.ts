// Node's behaviours that slotbus works around, as the Bun adapter keeps Bun's (bun/quirks.ts): each with the Node
// version it was seen in, where the workaround lives and what shows it.
import type { Quirk } from "../runtime.ts"

export const NODE_QUIRKS = {
  /** node:ffi is experimental: taking it prints an ExperimentalWarning on stderr. */
  FFI_EXPERIMENTAL_WARNING: {
    what: "taking node:ffi prints an ExperimentalWarning on stderr",
    seenIn: "26.12.1",
    workaround: "none in slotbus: an app that wants a clean stderr runs node --no-warnings=ExperimentalWarning",
    see: "test/runtime/quirks.test.ts (its canary, under Node)",
  },
  /**
   * A promise settled or a microtask queued in a node:ffi callback (no MakeCallback around it) runs at the next
   * microtask checkpoint, which an idle loop may not reach for seconds.
   */
  FFI_CALLBACK_NO_MICROTASKS: {
    what: "microtasks queued in a node:ffi callback wait for the loop's next checkpoint",
    seenIn: "26.12.1",
    workaround: "drainSoon() in src/runtime/node/poll.ts: an immediate after each wake brings them into this turn",
    see: "test/runtime/node-worker.test.ts (a worker on an idle loop answers at once)",
  },
  /** Node cannot read a promise's state synchronously (no Bun.peek): the first look says "pending". */
  NO_PROMISE_PEEK: {
    what: "a promise's state is known only a microtask after the first look",
    seenIn: "26.12.1",
    workaround: "promiseState in src/runtime/node/index.ts; readyBody (src/core/worker/ready-body.ts) looks again",
    see: "test/runtime/runtime.test.ts (the promise peeks, under Node)",
  },
  /** setTimeout stores its delay in 32 bits: a delay past 2^31−1 ms fires at once, as on Bun. */
  TIMER_OVERFLOW: {
    what: "setTimeout past 2^31−1 ms fires at once (a TimeoutOverflowWarning)",
    seenIn: "26.12.1",
    workaround: "sleep in src/runtime/node/index.ts waits in pieces; longTimeout in src/kit/basics/timers.ts",
    see: "src/kit/basics/timers.ts",
  },
} as const satisfies Record<string, Quirk>
