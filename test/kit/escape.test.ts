import { expect, test } from "bun:test"
import { printable } from "../../src/kit/escape.ts"

test.each([
  ["plain text and unicode pass as they are", "GET /items/é✓", "GET /items/é✓"],
  ["ESC and BEL of an OSC title are escaped", "\x1b]0;owned\x07", "\\x1b]0;owned\\x07"],
  ["a clear-screen sequence is escaped", "\x1b[2J", "\\x1b[2J"],
  ["tab, newline and carriage return get their short forms", "a\tb\nc\rd", "a\\tb\\nc\\rd"],
  ["NUL and DEL are escaped", "\x00\x7f", "\\x00\\x7f"],
  ["C1 controls (CSI 0x9b) are escaped", "\u009b2J", "\\x9b2J"],
  ["a backslash is doubled so an escape in the output is never ambiguous", "a\\x1b", "a\\\\x1b"],
  ["bidi overrides are escaped", "abc\u202edef", "abc\\u202edef"],
])("printable: %s", (_name, input, want) => {
  const got = printable(input)
  expect(got).toBe(want)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may be left
  expect(got).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
})
