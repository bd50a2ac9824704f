// What one syscall costs from JS on this machine (bun:ffi → libc): a bare syscall, a read of an empty
// non-blocking eventfd (EAGAIN), and an eventfd write + read. bun bench/slots/syscall-cost.ts
import { dlopen, FFIType, ptr } from "bun:ffi"
const c = dlopen("libc.so.6", {
  eventfd: { args: [FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  getppid: { args: [], returns: FFIType.i32 },
}).symbols
const fd = c.eventfd(0, 0o4000 /* EFD_NONBLOCK */)
const b = new BigUint64Array(1)
const p = ptr(b)
b[0] = 1n
const N = 200000
for (const [name, f] of [
  ["getppid (bare syscall)", () => c.getppid()],
  ["read eventfd, EAGAIN", () => c.read(fd, p, 8)],
  [
    "write eventfd + read it",
    () => {
      c.write(fd, p, 8)
      c.read(fd, p, 8)
    },
  ],
] as const) {
  for (let r = 0; r < 3; r++) {
    const t = Bun.nanoseconds()
    for (let i = 0; i < N; i++) f()
    if (r === 2) console.log(`${name}: ${((Bun.nanoseconds() - t) / N).toFixed(0)} ns`)
  }
}
