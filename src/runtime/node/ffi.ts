// node:ffi, taken once for the Node runtime's files; importing this throws the one clear error where it is missing.
import type * as NodeFfi from "node:ffi"
import { nodeFfiRefusal } from "../errors.ts"

// Taken at load, not imported: Bun has no node:ffi, and a bundle of slotbus (bun build --compile) holds this file and
// hoists its static imports to the top, where Bun would refuse this one (this file's body only runs under Node).
// Older Node has no getBuiltinModule, no node:ffi, or it turned off (undefined) or denied (ERR_ACCESS_DENIED at the
// first use): one error naming the version and what is needed, thrown at import.
const found = process.getBuiltinModule?.("node:ffi") as typeof NodeFfi | undefined
const refusal = nodeFfiRefusal({ version: process.version, hasFfi: found !== undefined, ffiDenied: ffiDenied() })
if (refusal) throw refusal
export const ffi = found!

function ffiDenied(): boolean {
  try {
    return (process as { permission?: { has(scope: string): boolean } }).permission?.has("ffi") === false
  } catch {
    return false // a Node whose permission model has no "ffi" scope: its version is the error
  }
}
