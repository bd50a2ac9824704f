// What the tests of the bench commands share.
import { expect, test } from "bun:test"

/** `slotbus bench <name> <argv>` is a usage error (main returns 2) for each argv; what it prints is hushed. */
export function usageErrors(name: string, main: (argv: string[]) => Promise<number>, argvs: string[][]) {
  test.each(argvs.map((a) => [a]))(`slotbus bench ${name} %p is a usage error (exit 2)`, async (argv: string[]) => {
    const err = console.error
    console.error = () => {}
    try {
      expect(await main(argv)).toBe(2)
    } finally {
      console.error = err
    }
  })
}
