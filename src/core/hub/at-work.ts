// The processes at work for a hub (the bus-processes word, docs/PROTOCOL.md §2): the hub itself and each worker
// process with a request in flight, or one back within AT_WORK_AFTER_MS. A bus counts its own workers (a crowd of its
// own); crowd.ts puts the buses of a hub with a bus per worker (slotbus/http) in one.
import type { SlotEndpoint } from "../endpoint/slot-endpoint.ts"

/** A bus in a crowd: its workers hear the count (the Acceptor). */
export interface CrowdMember {
  tellProcesses(n: number): void
}

/**
 * A worker counts as at work until it has had no request in flight this long: a loaded bus's quick answers leave its
 * workers with none for moments, and a route packed onto one worker gives its neighbours one now and then.
 */
const AT_WORK_AFTER_MS = 100

/**
 * Counts the worker processes at work over its members' connections. Each bus is a crowd of its own: another bus's
 * workers take no CPU from this one's handlers unless they are at work themselves, and counting every connected one
 * made each bus of a front with two pools park on every request (a Bun worker's 64 B round trip 2.7–4.5 µs alone,
 * 10–16 µs beside a second bus). Nor does an idle worker of its own: it parks for want of work, and counting it made
 * one client's requests to a front with 2 workers on 2 CPUs pay two wake-ups each (0.33–0.48× the front answering
 * itself; polled, 0.86–1.80×, docs/perf/round-nine-cliffs.md). A worker whose last request came back less than
 * AT_WORK_AFTER_MS ago still counts: counting requests in flight alone uncrowded a bus that sixteen clients crowd
 * between its quick answers (bench carry, 2 workers: bus.fetch +20.5 → +33.7 µs over direct).
 */
export class Crowd {
  readonly members = new Set<CrowdMember>()
  /** Connections counted at work: 0 while one has a request in flight, else when its last came back (ms). */
  private readonly busy = new Map<SlotEndpoint, number>()
  /** How many connections counted at work each worker process has. */
  private readonly busyPids = new Map<number, number>()
  private expiry: ReturnType<typeof setTimeout> | undefined
  /** What its workers were last told. */
  private told = 0

  /** The processes at work: this one and each worker process counted at work. */
  get atWork(): number {
    return 1 + this.busyPids.size
  }

  /** `e` sent its first request in flight (true), or got its last one back (false). */
  working(e: SlotEndpoint, working: boolean) {
    if (working) {
      const counted = this.busy.has(e)
      this.busy.set(e, 0)
      if (!counted) this.count(e, 1)
    } else if (this.busy.has(e)) {
      this.busy.set(e, performance.now())
      this.expiry ??= unref(setTimeout(() => this.expire(), AT_WORK_AFTER_MS))
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

  /** Stops counting the connections idle for AT_WORK_AFTER_MS; looks again for the others when they will be. */
  private expire() {
    this.expiry = undefined
    const now = performance.now()
    let next = Number.POSITIVE_INFINITY
    for (const [e, idleSince] of this.busy) {
      if (idleSince === 0) continue
      if (now - idleSince >= AT_WORK_AFTER_MS) this.left(e)
      else next = Math.min(next, idleSince + AT_WORK_AFTER_MS - now)
    }
    if (next !== Number.POSITIVE_INFINITY) this.expiry = unref(setTimeout(() => this.expire(), next))
  }
}

const unref = (t: ReturnType<typeof setTimeout>) => (typeof t === "object" && t.unref?.(), t)
