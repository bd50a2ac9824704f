// The buses of a hub that gives each worker a bus of its own (slotbus/http) are one pool: crowdTogether makes their
// workers count together in the bus-processes word (docs/PROTOCOL.md §2, at-work.ts), as one bus's would.
import { Crowd } from "./at-work.ts"
import type { SlotBus } from "./bus.ts"

export { Crowd }

/** From now on `bus`'s worker processes count together with those of the other buses in `crowd`. */
export function crowdTogether(bus: SlotBus, crowd: Crowd): void {
  bus.acceptor.joinCrowd(crowd)
}
