// Another user's bytes (a record's path, a file name, an event type) reach an operator's terminal only through
// here: C0, DEL and C1 controls would move the cursor, retitle the window or write the clipboard (OSC 52), and
// bidi overrides reorder what is shown. Escaped visibly, as `ls -b` and systemd's cescape do, so the text stays
// readable and unambiguous (a backslash is doubled, so `\x1b` in the output always means the byte ESC).

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it escapes
const UNSAFE = /[\\\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
const SHORT: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" }

const escapeOne = (c: string): string => {
  const short = SHORT[c]
  if (short) return short
  const code = c.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
}

/** The string with every control character (C0, DEL, C1, bidi override) and backslash escaped: ESC → `\x1b`. */
export function printable(s: string): string {
  return s.replace(UNSAFE, escapeOne)
}

// JSON.stringify leaves DEL, C1 and bidi controls as they are; \uXXXX keeps the JSON the same value.
const UNSAFE_IN_JSON = /[\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/** JSON.stringify(value, null, indent) with no control character left raw: safe to print, parses to the same value. */
export function printableJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    UNSAFE_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  )
}
