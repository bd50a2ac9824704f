// A squatter on a lease contest's name: it binds, as whatever uid runs it, version 2's abstract name
// "\0slotbus-lease.<name>" (the uid test: another uid can take only that), and answers every newcomer with a hello
// that says "welcome" (status 0) but carries no table; with "silent" it binds the contest's socket file in its own
// socket directory (docs/PROTOCOL.md §1.1), accepts newcomers and answers nothing.
//   bun lease-squatter.ts <name> <layout-hash> [silent]
import { freeHostName, loadNative } from "../../../src/native/ffi.ts"

const [name, hash, silent] = process.argv.slice(2)
await loadNative()
const hello = new DataView(new ArrayBuffer(32))
hello.setUint32(0, 0x5342434c, true)
hello.setUint32(4, 1, true)
hello.setUint32(8, Number(hash), true)
hello.setUint32(24, process.pid, true)
Bun.listen({
  unix: silent === "silent" ? freeHostName("slotbus-lease.", name!).path : `\0slotbus-lease.${name}`,
  socket: {
    open(s) {
      if (silent !== "silent") s.write(new Uint8Array(hello.buffer))
    },
    data() {},
  },
})
process.stdout.write("listening\n")
