// A bench party in its own process. Prints "ready", waits for "go" on stdin, then:
//   contend  <method> <ms> <target>                      prints "count <n>"
//   handover <method> <a|b> <n> <spin 0|1> <work|sleep> <target>   prints "result <json>"
// <target>: the contest name (slotbus), the lock file (flock) or the Redis URL (redis).
import {
  contend,
  flockLock,
  handover,
  redisLock,
  slotbusLock,
  warmUp,
  type Hold,
  type Lock,
  type ProcessMethod,
} from "./locks.ts"

const [job, method, ...rest] = process.argv.slice(2) as [string, ProcessMethod, ...string[]]
const target = rest.at(-1)!

/** The lock under test, or (warm) one of the same kind that only this party uses, to warm up on. */
async function open(warm = false): Promise<Lock> {
  if (method === "slotbus") return slotbusLock(target, warm ? `warm-${process.pid}` : "bench")
  if (method === "flock") return flockLock(warm ? `${target}.warm-${process.pid}` : target)
  return redisLock(target, warm ? `slotbus-bench-warm-${process.pid}` : "slotbus-bench-lock")
}

const lock = await open()
const lines = console[Symbol.asyncIterator]()
const go = async () => {
  for (let l = await lines.next(); !l.done; l = await lines.next()) if (l.value.trim() === "go") return
}
if (job === "contend") {
  process.stdout.write("ready\n")
  await go()
  const n = await contend(lock, Number(rest[0]), method === "redis")
  process.stdout.write(`count ${n}\n`)
} else {
  const [role, n, spin, hold] = [rest[0] as "a" | "b", Number(rest[1]), rest[2] === "1", rest[3] as Hold]
  const warm = await open(true)
  const rival = method === "slotbus" ? await open(true) : undefined // flock's wait blocks the thread: no rival
  await warmUp(warm, method === "redis" ? 500 : 20_000, rival)
  await warm.close()
  await rival?.close()
  if (role === "a" && !(await lock.tryAcquire())) throw new Error("the lock is taken before the handover bench started")
  process.stdout.write("ready\n")
  await go()
  const r = await handover(lock, role, n, spin, hold, (ms) => Bun.sleep(ms), "process")
  process.stdout.write(`result ${JSON.stringify(r)}\n`)
}
await lock.close()
process.exit(0)
