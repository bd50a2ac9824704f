// Connects to a hub and closes at once, in a loop, without reading anything: a local user trying to keep
// the hub's accept busy. Usage: bun test/support/core/connect-flooder.ts <bus-name> <ms> <hub-uid>
// Prints "flooding", then after <ms> "connected <n>" (connections the kernel completed).
import { loadNative } from "../../../src/native/ffi.ts"

const native = await loadNative()

const [name, msArg, hubUidArg] = process.argv.slice(2)
if (!name) throw new Error("usage: connect-flooder.ts <bus-name> <ms>")
const cname = Buffer.from(name + "\0")
const err = new Int32Array(1)
console.log("flooding")
const until = performance.now() + Number(msArg ?? 3000)
let n = 0
while (performance.now() < until) {
  const ch = native.sb_connect_start(cname, Number(hubUidArg ?? process.getuid?.()), err)
  if (ch) {
    n++
    native.sb_close(ch)
  }
  if (n % 64 === 0) await Bun.sleep(0) // let stdout out now and then
}
console.log(`connected ${n}`)
process.exit(0)
