// The one table printer of the commands (`slotbus status`, `ls`, `top`, `requests`): cells in columns as wide as
// their widest cell, two spaces apart. The cells come cleaned of control characters by the caller, each command
// its own way, since their output is what scripts and users already read.

/** `rows` (the header first) as lines; a column marked in `right` is aligned right, the last one is not padded. */
export function table(rows: string[][], right: readonly boolean[] = []): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return rows.map((r) =>
    r.map((c, i) => (right[i] ? c.padStart(widths[i]!) : i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "),
  )
}
