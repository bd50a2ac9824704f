// Every method `slotbus bench` measures: its name, mode, label and peers, and how it is opened or measured.
import * as bunFloor from "./methods/bun-floor.ts"
import * as cWorker from "./methods/c-worker.ts"
import * as floor from "./methods/floor.ts"
import * as http from "./methods/http.ts"
import { openBunNode, openNodeHub } from "./methods/node.ts"
import * as portable from "./methods/portable.ts"
import * as processSend from "./methods/process-send.ts"
import * as pythonWorker from "./methods/python-worker.ts"
import * as slotbus from "./methods/slotbus.ts"
import * as tcp from "./methods/tcp.ts"
import * as unix from "./methods/unix.ts"
import * as threadWorker from "./methods/worker.ts"
import { Samples } from "../lib/samples.ts"
import type { Driver, Sample } from "./measure.ts"
import type { MethodInfo } from "./report.ts"
import type { Transport } from "./transport.ts"

export interface MethodDef extends MethodInfo {
  open?: (o: { cWorker: string | undefined }) => Promise<Transport>
  /** A hub in a process of its own (a Node front, a backend's), which measures itself. */
  driver?: () => Promise<Driver>
  /** Left out of --quick unless named by --only: a question for slotbus's makers more than for its users. */
  notQuick?: boolean
  /** Measures itself, one size and in-flight level at a time, after `warmMs` of warm-up; `warmed`: and until its
   * compilers are done (settle.ts), for a floor with a runtime. */
  floor?: (size: number, inflight: number, ms: number, warmMs: number, warmed: boolean) => Promise<Sample>
}

async function cFloor(mode: "spin" | "futex", size: number, inflight: number, ms: number): Promise<Sample> {
  await floor.prepare()
  const r = await floor.measure(mode, size, inflight, ms)
  return {
    count: r.samples.length,
    elapsedS: r.elapsedS,
    hubCpuS: r.hubCpuS,
    workerCpuS: r.workerCpuS,
    times: Samples.of(r.samples),
    parts: r.parts,
  }
}

function def(name: string, mode: string, label: string, peers: string, rest: Partial<MethodDef>): MethodDef {
  return { id: `${name}:${mode}`, name, mode, label, peers, ...rest }
}

export const METHODS: MethodDef[] = [
  def("floor", "spin", "C floor spin", "C↔C", { floor: (s, n, ms) => cFloor("spin", s, n, ms) }),
  def("floor", "futex", "C floor futex", "C↔C", { floor: (s, n, ms) => cFloor("futex", s, n, ms) }),
  def("floor-bun", "spin", "Bun floor spin", "Bun↔Bun", { floor: bunFloor.measure }),
  def("slotbus", "spin", "slotbus spin", "Bun↔Bun", { open: () => slotbus.open("spin") }),
  def("slotbus", "adaptive", "slotbus adaptive", "Bun↔Bun", { open: () => slotbus.open("adaptive") }),
  def("slotbus", "park", "slotbus park", "Bun↔Bun", { open: () => slotbus.open("park") }),
  def("slotbus", "into", "slotbus into", "Bun↔Bun (adaptive, answers copied into a buffer per loop)", {
    open: () => slotbus.open("adaptive", true),
  }),
  // the Linux backend against the portable one macOS runs (docs/PROTOCOL.md §13), each hub in a child process
  ...(["spin", "park"] as const).flatMap((idle) =>
    (["linux", "posix"] as const).map((b) =>
      def("backends", `${b}-${idle}`, `${b} ${idle} (child)`, "Bun↔Bun", {
        driver: () => portable.openBackend(b, idle),
        notQuick: true,
      }),
    ),
  ),
  def("slotbus-c", "spin", "slotbus-C spin", "Bun↔C --spin (C busy-polls)", {
    open: (o) => cWorker.open("spin", o.cWorker),
  }),
  def("slotbus-c", "adaptive", "slotbus-C adaptive", "Bun↔C (sb_idle adaptive, as the Bun worker)", {
    open: (o) => cWorker.open("adaptive", o.cWorker),
  }),
  def("slotbus-c", "park", "slotbus-C park", "Bun↔C --futex (C parks at once)", {
    open: (o) => cWorker.open("park", o.cWorker),
  }),
  // The Python worker's only idle mode: it parks on its eventfd whenever its ring is empty; the hub is adaptive.
  def("slotbus-py", "eventfd", "slotbus-Py eventfd", "Bun↔Python (parks on its eventfd at once)", {
    open: () => pythonWorker.open("adaptive"),
  }),
  def("process.send", "advanced", "process.send", "Bun↔Bun", { open: processSend.open }),
  def("unix", "stream", "unix socket", "Bun↔Bun", { open: unix.open }),
  def("tcp", "loopback", "TCP loopback", "Bun↔Bun", { open: tcp.open }),
  def("http", "keep-alive", "HTTP keep-alive", "Bun↔Bun", { open: http.open }),
  def("worker", "postMessage", "Worker postMessage", "same process", { open: threadWorker.open }),
  // Node 26 (issue 67), each adaptive: a Node front runs in a Node process that measures itself (methods/node.ts)
  def("node", "slotbus", "slotbus Node↔Node", "Node↔Node (adaptive)", { driver: () => openNodeHub("slotbus-node") }),
  def("node-bun", "slotbus", "slotbus Node→Bun", "Node front, Bun worker (adaptive)", {
    driver: () => openNodeHub("slotbus-bun"),
  }),
  def("bun-node", "slotbus", "slotbus Bun→Node", "Bun front, Node worker (adaptive)", { open: openBunNode }),
  def("node", "process.send", "Node process.send", "Node↔Node (advanced)", {
    driver: () => openNodeHub("process.send"),
  }),
  def("node", "worker", "Node worker thread", "same Node process (worker_threads)", {
    driver: () => openNodeHub("worker"),
  }),
  def("node", "unix", "Node unix socket", "Node↔Node (net)", { driver: () => openNodeHub("unix") }),
]
