// What `slotbus bench soak --production` asks and what a right answer is: the witness (the run) and the worker
// compute it apart, so an answer for another request, a cut body or a stale one cannot pass.

/** GET /item/<k>: 100 B to 48 KiB of text made from k. */
export function item(k: number): string {
  const size = 100 + ((k * 2_654_435_761) % 49_052)
  const unit = `item ${k};`
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size)
}

/** POST /order { id, n }: the value its answer must carry. */
export function orderValue(n: number): number {
  return (n * 31 + 7) % 1_000_003
}
