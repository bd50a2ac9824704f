// Why this process cannot be slotbus's host (issue 67): the runtime room's one error. It imports nothing of slotbus
// (the room is the bottom one), so it is not a SlotBusError; the package entry (src/index.ts) exports it.

/** "off": the Node adapter takes node:ffi without its ExperimentalWarning (a pool sets it for its workers). */
export const FFI_WARNING_ENV = "SLOTBUS_NODE_FFI_WARNING"

/** The first Node with node:ffi on by default, and the first with it behind --experimental-ffi. */
export const NODE_FFI_DEFAULT: readonly [number, number] = [26, 9]
export const NODE_FFI_FLAGGED: readonly [number, number] = [26, 1]

/**
 * This Node cannot run slotbus: too old for node:ffi, or node:ffi turned off (--no-experimental-ffi, or not turned on
 * before 26.9) or denied (--permission without --allow-ffi). Thrown when slotbus is imported, so a caught
 * `await import("slotbus")` goes on. The message names the version found and the version or flag needed.
 */
export class UnsupportedRuntimeError extends Error {
  readonly code = "ERR_SLOTBUS_UNSUPPORTED_RUNTIME"
  /** The runtime found, as `process.version` says it ("v20.20.2"); Bun running the build for Node: "bun 1.4.5". */
  readonly found: string
  /** What would run it: a Node version or a flag. */
  readonly needs: string
  constructor(found: string, needs: string, message: string) {
    super(message)
    this.name = "UnsupportedRuntimeError"
    this.found = found
    this.needs = needs
  }
}

/** What the Node process has of node:ffi (nodeFfiRefusal's input: read from `process` by runtime/node/ffi.ts). */
export interface NodeFfiFacts {
  /** process.version, "v26.12.1". */
  version: string
  /** Whether process.getBuiltinModule gave the node:ffi module. */
  hasFfi: boolean
  /** Whether the permission model is on and denies ffi (process.permission.has("ffi") is false). */
  ffiDenied: boolean
}

const atLeast = (v: readonly number[], min: readonly [number, number]) =>
  v[0]! > min[0] || (v[0] === min[0] && v[1]! >= min[1])

/** The error that says why this Node cannot run slotbus, or undefined when it can. */
export function nodeFfiRefusal({ version, hasFfi, ffiDenied }: NodeFfiFacts): UnsupportedRuntimeError | undefined {
  const v = version.replace(/^v/, "").split(".").map(Number)
  const runs = `Node >= ${NODE_FFI_DEFAULT.join(".")} (or ${NODE_FFI_FLAGGED.join(".")} with --experimental-ffi)`
  if (!atLeast(v, NODE_FFI_FLAGGED))
    return new UnsupportedRuntimeError(
      version,
      runs,
      `slotbus under Node needs node:ffi: ${runs}, or Bun >= 1.4; this is Node ${version}`,
    )
  if (hasFfi && !ffiDenied) return undefined
  if (ffiDenied)
    return new UnsupportedRuntimeError(
      version,
      "--allow-ffi",
      `slotbus needs node:ffi, which the permission model (--permission) denies in this Node ${version}: add --allow-ffi`,
    )
  if (!atLeast(v, NODE_FFI_DEFAULT))
    return new UnsupportedRuntimeError(
      version,
      "--experimental-ffi",
      `slotbus needs node:ffi, which Node ${version} turns on only with --experimental-ffi (on by default from ` +
        `${NODE_FFI_DEFAULT.join(".")}): run node --experimental-ffi`,
    )
  return new UnsupportedRuntimeError(
    version,
    "no --no-experimental-ffi",
    `slotbus needs node:ffi, which is turned off in this Node ${version} (--no-experimental-ffi, on the command ` +
      "line or in NODE_OPTIONS): remove that flag",
  )
}

/**
 * Bun running slotbus's build for Node (dist/, or an app bundled for Node with slotbus in it): scripts/dist.ts puts
 * this where src/runtime/index.ts requires Bun's adapter, so that no bundle for Node holds that adapter (bun:ffi and
 * every prebuild as a file). Bun itself loads src/ (the package's "bun" export condition).
 */
export function nodeBuildUnderBun(): never {
  throw new UnsupportedRuntimeError(
    `bun ${process.versions.bun}`,
    "Node",
    `this is slotbus's build for Node (its dist/, or an app bundled for Node that holds it), run by Bun ` +
      `${process.versions.bun}: run it with Node, or under Bun import slotbus from node_modules (Bun loads its src/) ` +
      "and bundle with bun build --target=bun",
  )
}
