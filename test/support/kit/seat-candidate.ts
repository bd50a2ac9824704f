// A candidate in a per-host election (src/kit/host/host-seat.ts), for test/kit/host/seat.test.ts.
//   bun seat-candidate.ts <name>     prints "ready <pid>" once standing, "elected <pid>" when it holds the name
import { HostSeat } from "../../../src/kit/host/host-seat.ts"
import { loadNative } from "../../../src/native/ffi.ts"

await loadNative()
HostSeat.stand("slotbus.test-seat.", process.argv[2]!, { elected: () => console.log(`elected ${process.pid}`) })
console.log(`ready ${process.pid}`)
setInterval(() => {}, 1 << 30) // until killed
