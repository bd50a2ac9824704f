// Command lines as a user types them (`--spawn "bun worker.ts --idle park"`), split into argv for the runtime's spawn.

/** Splits a command line into argv: whitespace separates, single or double quotes group, backslash escapes. */
export function splitCommand(line: string): string[] {
  const out: string[] = []
  let cur = ""
  let quote: string | null = null
  let has = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      if (c === quote) quote = null
      else if (c === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i]
      else cur += c
    } else if (c === "'" || c === '"') {
      quote = c
      has = true
    } else if (c === "\\" && i + 1 < line.length) {
      cur += line[++i]
      has = true
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur)
      cur = ""
      has = false
    } else cur += c
  }
  if (quote) throw new TypeError(`unterminated ${quote} quote in command: ${line}`)
  if (has || cur) out.push(cur)
  return out
}
