// The processes at work for a hub (the bus-processes word, docs/PROTOCOL.md §2): the hub itself and each worker
// process with a request in flight or one lately. A bus counts its own workers (a crowd of its own); crowd.ts puts
// the buses of a hub with a bus per worker (slotbus/http) in one.
import type { SlotEndpoint } from "../endpoint/slot-endpoint.ts"

/** A bus in a crowd: its workers hear the count (the Acceptor). */
export interface CrowdMember {
  tellProcesses(n: number): void
}

/**
 * A worker counts as at work until it has had no request in flight, and sent none, for this long (up to twice it: a
 * sweep this often looks): a loaded bus's quick answers leave its workers with none for moments, and a route packed
 * onto one worker gives its neighbours one now and then.
 */
const AT_WORK_AFTER_MS = 100

/**
 * Counts the worker processes at work over its members' connections. Each bus is a crowd of its own: another bus's
 * workers take no CPU from this one's handlers unless they are at work themselves, and counting every connected one
 * made each bus of a front with two pools park on every request (a Bun worker's 64 B round trip 2.7–4.5 µs alone,
 * 10–16 µs beside a second bus). Nor does an idle worker of its own: it parks for want of work, and counting it made
 * one client's requests to a front with 2 workers on 2 CPUs pay two wake-ups each (0.33–0.48× the front answering
 * itself; polled, 0.86–1.80×, docs/perf/round-nine-cliffs.md). A worker with none in flight still counts until a
 * sweep finds it sent none since the sweep before, which also found none in flight: counting requests in flight
 * alone uncrowded a bus that sixteen clients crowd between its quick answers (bench carry, 2 workers: bus.fetch
 * +20.5 → +33.7 µs over direct). Nothing is timed per request: a sweep reads each counted connection's requests in
 * flight and sent (a clock read and two map writes a round trip cost a 64 B bus.call 60–70 ns,
 * docs/perf/round-nine-cliffs.md).
 */
export class Crowd {
  readonly members = new Set<CrowdMember>()
  /** Connections counted at work, with their requests sent at the last sweep that found none in flight (else -1). */
  private readonly busy = new Map<SlotEndpoint, number>()
  /** How many connections counted at work each worker process has. */
  private readonly busyPids = new Map<number, number>()
  private sweeper: ReturnType<typeof setInterval> | undefined
  /** What its workers were last told. */
  private told = 0

  /** The processes at work: this one and each worker process counted at work. */
  get atWork(): number {
    return 1 + this.busyPids.size
  }

  /** `e` sent a request with none in flight: counted at work from now on, if it was not. */
  sent(e: SlotEndpoint) {
    if (this.busy.has(e)) return
    this.busy.set(e, -1)
    this.count(e, 1)
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), AT_WORK_AFTER_MS)
      this.sweeper.unref()
    }
  }

  /** `e` left the crowd (its worker gone, or its bus moved to another crowd). */
  left(e: SlotEndpoint) {
    if (this.busy.delete(e)) this.count(e, -1)
  }

  /** Every worker of the crowd hears the number if it changed since it was last told (or, with `again`, anyway). */
  tell(again = false) {
    const n = this.atWork
    if (n === this.told && !again) return
    this.told = n
    for (const a of this.members) a.tellProcesses(n)
  }

  private count(e: SlotEndpoint, by: 1 | -1) {
    const pid = e.chan.peerPid
    const n = (this.busyPids.get(pid) ?? 0) + by
    if (n > 0) this.busyPids.set(pid, n)
    else this.busyPids.delete(pid)
    this.tell()
  }

  /** Stops counting the connections that had none in flight and sent none since the last sweep found them so. */
  private sweep() {
    for (const [e, sentBefore] of this.busy) {
      if (e.inFlight > 0) this.busy.set(e, -1)
      else if (e.requests === sentBefore) this.left(e)
      else this.busy.set(e, e.requests)
    }
    if (this.busy.size === 0) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }
}
