// Round-trip times kept exactly (a growable Float64Array) and read back as exact percentiles: no histogram
// library, so nothing of the bench becomes a dependency of the apps that install slotbus.

export class Samples {
  private data = new Float64Array(1 << 14)
  private n = 0
  private sorted = true

  get count(): number {
    return this.n
  }

  record(v: number) {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[this.n++] = v
    this.sorted = false
  }

  /** The recorded values, in no particular order (to send them to another process). */
  values(): Float64Array {
    return this.data.slice(0, this.n)
  }

  static of(values: ArrayLike<number>): Samples {
    const s = new Samples()
    s.data = Float64Array.from(values)
    s.n = values.length
    s.sorted = false
    return s
  }

  /** The smallest recorded value v such that at least p% of the values are ≤ v (nearest rank); NaN when empty. */
  percentile(p: number): number {
    if (this.n === 0) return NaN
    const view = this.data.subarray(0, this.n)
    if (!this.sorted) {
      view.sort()
      this.sorted = true
    }
    // the epsilon keeps float error (0.999 * 100000 = 99900.00000000001) from moving the rank up by one
    const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.n - 1e-9)
    return view[Math.max(0, rank - 1)]!
  }

  get max(): number {
    return this.percentile(100)
  }
}

/** The median of the finite values (the mean of the two middle ones for an even count); NaN when none. */
export function median(values: number[]): number {
  const xs = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (xs.length === 0) return NaN
  const mid = xs.length >> 1
  return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2
}

/** [min, max] of the finite values; [NaN, NaN] when none. */
export function range(values: number[]): [number, number] {
  const xs = values.filter(Number.isFinite)
  return xs.length ? [Math.min(...xs), Math.max(...xs)] : [NaN, NaN]
}
