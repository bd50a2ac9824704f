// CLOCK_MONOTONIC in nanoseconds, the same in every process (process.hrtime in Bun is per process), so a
// subscriber process can subtract a publisher's send time.
import { dlopen, FFIType } from "bun:ffi"

const libc = dlopen(process.arch === "arm64" ? "libc.so.6" : "libc.so.6", {
  clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
}).symbols
const ts = new BigInt64Array(2)
const CLOCK_MONOTONIC = 1

export function monoNs(): number {
  libc.clock_gettime(CLOCK_MONOTONIC, ts)
  return Number(ts[0]!) * 1e9 + Number(ts[1]!)
}
