// Opens two hosts (test/support/hosts.ts) and prints "open <netns> <host A's veth> <hosts.dir>"; then, by argv[2]:
//   wait    waits to be killed with kill -9: a test process that dies before it can close (removeStaleHosts' case)
//   throw   throws, uncaught: the process exits with an error, and hosts.ts's exit handler must clean up
import { openHosts } from "../hosts.ts"

const mode = process.argv[2]
if (mode !== "wait" && mode !== "throw") throw new Error("usage: hosts-crash.ts wait|throw")
const hosts = await openHosts()
console.log(`open ${hosts.b.netns} ${hosts.veth} ${hosts.dir}`)
if (mode === "throw") throw new Error("a test failing without closing its hosts")
setInterval(() => {}, 1 << 30)
