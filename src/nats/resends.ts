// Resends across hosts (docs/PROTOCOL.md §11.3): a new bridge sends again what its predecessor sent but its
// server had not confirmed, at most 1,024 events. A receiver (a bridge, or a stream subscriber) drops them by the
// sending ring, the event's pos and the message's bytes from offset 12 on (pos, ring, event).

const RINGS = 64
const KEPT = 4096

/** The pos and the bytes' CRC-32 of the last 4,096 messages taken per sending ring, for 64 rings. */
export class Resends {
  private readonly rings = new Map<bigint, Map<number, number>>()

  /**
   * Whether the message of `ring` with this pos (§11.2 offset 12) and this CRC-32 of its bytes 12 … end was taken
   * already; if not, it is noted as taken.
   */
  seen(ring: bigint, pos: number, crc: number): boolean {
    let taken = this.rings.get(ring)
    if (taken === undefined) {
      if (this.rings.size >= RINGS) this.rings.delete(this.rings.keys().next().value!)
      this.rings.set(ring, (taken = new Map()))
    }
    const was = taken.get(pos)
    if (was === crc) return true
    // a pos taken with other bytes (a forged message, or a pos 4 GiB of events later): the newer is kept
    if (was !== undefined) taken.delete(pos)
    taken.set(pos, crc)
    if (taken.size > KEPT) taken.delete(taken.keys().next().value!)
    return false
  }
}
