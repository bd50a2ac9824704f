// node:ffi, taken once for the Node runtime's files; importing this throws the one clear error where it is missing.
import type * as NodeFfi from "node:ffi"
import { FFI_WARNING_ENV, nodeFfiRefusal } from "../errors.ts"

// Taken at load, not imported: Bun has no node:ffi, and a bundle of slotbus (bun build --compile) holds this file and
// hoists its static imports to the top, where Bun would refuse this one (this file's body only runs under Node).
// Older Node has no getBuiltinModule, no node:ffi, or it turned off (undefined) or denied (ERR_ACCESS_DENIED at the
// first use): one error naming the version and what is needed, thrown at import.
const take = () => process.getBuiltinModule?.("node:ffi") as typeof NodeFfi | undefined
const found = process.env[FFI_WARNING_ENV] === "off" ? withoutFfiWarning(take) : take()
const refusal = nodeFfiRefusal({ version: process.version, hasFfi: found !== undefined, ffiDenied: ffiDenied() })
if (refusal) throw refusal
export const ffi = found!

/**
 * Takes node:ffi without its ExperimentalWarning, and only that one, where FFI_WARNING_ENV is "off": a pool sets it
 * for the workers it starts, whose front printed the warning already (each restart printed it again).
 */
function withoutFfiWarning<T>(take: () => T): T {
  const emit = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === "string" ? warning : warning?.message
    if (text?.startsWith("FFI is an experimental feature")) return
    return (emit as (...a: unknown[]) => void).call(process, warning, ...rest)
  }) as typeof process.emitWarning
  try {
    return take()
  } finally {
    process.emitWarning = emit
  }
}

function ffiDenied(): boolean {
  try {
    return (process as { permission?: { has(scope: string): boolean } }).permission?.has("ffi") === false
  } catch {
    return false // a Node whose permission model has no "ffi" scope: its version is the error
  }
}
