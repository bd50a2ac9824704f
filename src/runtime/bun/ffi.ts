// The native library on Bun: bun:ffi's dlopen and toArrayBuffer, and the prebuilds Bun's file import brings along.
// bun:ffi is taken from the process, not imported: a build of slotbus for Node (test/support/runtime) holds this file
// too, which only Bun ever runs (runtime/index.ts requires the adapter there), and Node refuses a `bun:` import.
import type * as BunFfi from "bun:ffi"
import type { NativeFunction, NativeSymbols, Pointer } from "../runtime.ts"

const { dlopen, toArrayBuffer } = process.getBuiltinModule("bun:ffi") as typeof BunFfi

// Literal specifiers, so `bun build --compile` embeds every prebuild; a missing one only fails when chosen.
const prebuilds: Record<string, () => Promise<{ default: string }>> = {
  "linux-x64": () => import("../../../prebuilds/linux-x64/libslotbus.so", { with: { type: "file" } }),
  "linux-x64-musl": () => import("../../../prebuilds/linux-x64-musl/libslotbus.so", { with: { type: "file" } }),
  "linux-arm64": () => import("../../../prebuilds/linux-arm64/libslotbus.so", { with: { type: "file" } }),
  "linux-arm64-musl": () => import("../../../prebuilds/linux-arm64-musl/libslotbus.so", { with: { type: "file" } }),
  "darwin-arm64": () => import("../../../prebuilds/darwin-arm64/libslotbus.dylib", { with: { type: "file" } }),
  "darwin-x64": () => import("../../../prebuilds/darwin-x64/libslotbus.dylib", { with: { type: "file" } }),
}

/** The prebuild for `platform` as Bun's file import gives it (inside a compiled executable, the embedded copy). */
export async function embeddedLibrary(platform: string): Promise<string | undefined> {
  try {
    return (await prebuilds[platform]?.())?.default
  } catch {
    return undefined
  }
}

/** Opens the library with its functions as `symbols` declares them; the object returned holds them, called as they are. */
export function openLibrary<S extends Record<string, NativeFunction>>(path: string, symbols: S): NativeSymbols<S> {
  return dlopen(path, symbols).symbols as unknown as NativeSymbols<S>
}

/** toArrayBuffer itself (a slot's arena view is made per large answer: no wrapper in between). */
export const memoryView = toArrayBuffer as (ptr: Pointer, offset: number, length: number) => ArrayBuffer
