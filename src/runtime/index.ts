// The runtime room: the host operations slotbus needs, in its own names (runtime.ts). Bun's today (bun.ts); a Node
// one is issue 67. Nothing outside this folder names Bun's globals or bun:ffi (test/architecture.test.ts).
import * as bun from "./bun.ts"
import type { Runtime } from "./runtime.ts"

export * from "./bun.ts"
export { BUN_QUIRKS, type Quirk } from "./bun-quirks.ts"
export type {
  DoorbellReader,
  NativeFunction,
  NativeSymbols,
  NativeType,
  Pointer,
  PromiseState,
  Runtime,
} from "./runtime.ts"

/** The operations as one object, checked against the interface. */
export const runtime: Runtime = bun
