// A squatter on a lease contest's name, for the uid test: it binds "\0slotbus-lease.<name>" as whatever uid
// runs it and answers every newcomer with a hello that says "welcome" (status 0) but carries no table; with
// "silent" it accepts newcomers and answers nothing.
//   bun lease-squatter.ts <name> <layout-hash> [silent]
const [name, hash, silent] = process.argv.slice(2)
const hello = new DataView(new ArrayBuffer(32))
hello.setUint32(0, 0x5342434c, true)
hello.setUint32(4, 1, true)
hello.setUint32(8, Number(hash), true)
hello.setUint32(24, process.pid, true)
Bun.listen({
  unix: `\0slotbus-lease.${name}`,
  socket: {
    open(s) {
      if (silent !== "silent") s.write(new Uint8Array(hello.buffer))
    },
    data() {},
  },
})
process.stdout.write("listening\n")
