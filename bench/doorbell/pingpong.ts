// What one doorbell round trip costs between two Bun processes (issue 66): each side rings the other's bell and
// waits on its own, read the way src/runtime reads it. Kinds: `eventfd` (an eventfd read through Bun.file(fd).stream(),
// the doorbell before protocol 4), `stream` / `dgram` (the read end of a unix socketpair through Bun.connect({ fd })).
//   bun bench/doorbell/pingpong.ts [eventfd|stream|dgram|all] [rounds]
//   strace -c -f -o /tmp/s bun bench/doorbell/pingpong.ts stream 20000   (syscalls: subtract a run of 0 rounds)
import { dlopen, FFIType, ptr } from "bun:ffi"

const c = dlopen("libc.so.6", {
  eventfd: { args: [FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  socketpair: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
}).symbols
const AF_UNIX = 1
const SOCK_STREAM = 1
const SOCK_DGRAM = 2
const SOCK_NONBLOCK = 0o4000
const SOCK_CLOEXEC = 0o2000000
const EFD_NONBLOCK = 0o4000
const MSG_DONTWAIT = 0x40
type Kind = "eventfd" | "stream" | "dgram"

const one = new BigUint64Array([1n])
const onePtr = ptr(one)

/** Rings a bell: an eventfd's counter + 1, or one byte on a socket (a full buffer is an already rung bell). */
function ringer(kind: Kind, fd: number): () => void {
  return kind === "eventfd" ? () => void c.write(fd, onePtr, 8) : () => void c.send(fd, onePtr, 1, MSG_DONTWAIT)
}

/** Calls onWake once per wake of the bell at `fd`, read as src/runtime reads that kind. */
async function listen(kind: Kind, fd: number, onWake: () => void) {
  if (kind === "eventfd") {
    const reader = Bun.file(fd).stream().getReader()
    const next = (): void => {
      reader.read().then((r) => {
        if (r.done) return
        onWake()
        next()
      })
    }
    next()
    return () => reader.cancel()
  }
  const s = await Bun.connect({ fd, socket: { data: () => onWake() } } as never)
  return () => (s as { end(): void }).end()
}

/** [my bell's read end, the peer's bell's ring end] for each side, as the parent hands them out. */
function pairs(kind: Kind): { parent: [number, number]; child: [number, number] } {
  if (kind === "eventfd") {
    const a = c.eventfd(0, EFD_NONBLOCK)
    const b = c.eventfd(0, EFD_NONBLOCK)
    return { parent: [a, b], child: [b, a] }
  }
  const type = (kind === "stream" ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK
  const a = new Int32Array(2)
  const b = new Int32Array(2)
  if (c.socketpair(AF_UNIX, type, 0, ptr(a)) !== 0 || c.socketpair(AF_UNIX, type, 0, ptr(b)) !== 0)
    throw new Error("socketpair failed")
  // a: the parent's bell (reads a[0], the child rings a[1]); b: the child's.
  return { parent: [a[0]!, b[1]!], child: [b[0]!, a[1]!] }
}

async function child(kind: Kind, rounds: number) {
  // fds 3 and 4: my bell, the parent's bell.
  const ring = ringer(kind, 4)
  let n = 0
  let stop = () => {}
  stop = await listen(kind, 3, () => {
    ring()
    if (++n === rounds) stop()
  })
  process.stdout.write("ready\n")
}

async function parent(kind: Kind, rounds: number): Promise<number> {
  const p = pairs(kind)
  const kid = Bun.spawn(["bun", import.meta.path, "--child", kind, String(rounds)], {
    stdio: ["ignore", "pipe", "inherit", p.child[0], p.child[1]],
  })
  const out = kid.stdout.getReader()
  await out.read() // "ready"
  const ring = ringer(kind, p.parent[1])
  let n = 0
  let t0 = 0
  const done = Promise.withResolvers<number>()
  let stop = () => {}
  stop = await listen(kind, p.parent[0], () => {
    if (++n === rounds) {
      done.resolve(Bun.nanoseconds() - t0)
      return stop()
    }
    ring()
  })
  t0 = Bun.nanoseconds()
  if (rounds > 0) ring()
  else done.resolve(0)
  const ns = await done.promise
  kid.kill()
  await kid.exited
  return ns
}

const args = process.argv.slice(2)
if (args[0] === "--child") {
  await child(args[1] as Kind, Number(args[2]))
} else {
  const which = args[0] ?? "all"
  const rounds = Number(args[1] ?? 20000)
  const kinds: Kind[] = which === "all" ? ["eventfd", "stream", "dgram"] : [which as Kind]
  for (const kind of kinds) {
    const ns = await parent(kind, rounds)
    console.log(`${kind}: ${rounds} round trips, ${rounds ? (ns / rounds / 1000).toFixed(1) : 0} µs each`)
  }
  process.exit(0)
}
