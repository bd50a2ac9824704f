import { expect, test } from "bun:test"
import { printable, printableJson } from "../../../src/kit/checks/escape.ts"

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

test("printableJson leaves no control character raw and parses back to the same value", () => {
  const value = { what: "GET /\x1b[2J\u009b31m\u202e\x7f", n: [1, "\x07"] }
  const text = printableJson(value, 2)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may be left
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/)
  expect(JSON.parse(text)).toEqual(value)
})
