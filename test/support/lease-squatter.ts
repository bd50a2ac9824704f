// A squatter on a lease contest's name, for the uid test: it binds "\0slotbus-lease.<name>" as whatever uid
// runs it and answers every newcomer with a hello that says "welcome" (status 0) but carries no table.
//   bun lease-squatter.ts <name> <layout-hash>
const [name, hash] = process.argv.slice(2)
const hello = new DataView(new ArrayBuffer(32))
hello.setUint32(0, 0x5342434c, true)
hello.setUint32(4, 1, true)
hello.setUint32(8, Number(hash), true)
hello.setUint32(24, process.pid, true)
Bun.listen({
  unix: `\0slotbus-lease.${name}`,
  socket: {
    open(s) {
      s.write(new Uint8Array(hello.buffer))
    },
    data() {},
  },
})
process.stdout.write("listening\n")
