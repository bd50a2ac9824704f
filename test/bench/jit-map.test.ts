// bench/lib/jit-map.ts: a real Bun process's jitdump, turned into perf map lines that name its hot function.
import { expect, test } from "bun:test"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { mapLines } from "../../bench/lib/jit-map.ts"

test("a Bun process's jitdump names its JIT-compiled functions, with address and size", async () => {
  const dir = mkdtempSync(join(tmpdir(), "jit-map-"))
  try {
    // hot for a while, then idle: the JIT logs compiled code from a thread of its own, a little later
    const code =
      "function hotFunctionForTheMap(x) { return (x * 2 + 1) % 7 }; let s = 0; for (let r = 0; r < 20; r++) { for (let i = 0; i < 1e6; i++) s += hotFunctionForTheMap(i); await Bun.sleep(1) }; await Bun.sleep(300); console.log(s)"
    const proc = Bun.spawn([process.execPath, "-e", code], {
      env: { ...process.env, BUN_JSC_useJITDump: "1", BUN_JSC_jitDumpDirectory: dir },
      stdout: "pipe",
      stderr: "pipe",
    })
    expect(await proc.exited).toBe(0)
    const dumps = readdirSync(dir).filter((f) => /^jit-\d+-\d+\.dump$/.test(f))
    expect(dumps.length).toBe(1)
    const lines = mapLines(readFileSync(join(dir, dumps[0]!)))
    const hot = lines.filter((l) => l.includes("hotFunctionForTheMap"))
    expect(hot.length).toBeGreaterThan(0) // Baseline, DFG, FTL: each tier's code
    for (const l of hot) expect(l).toMatch(/^[0-9a-f]+ [0-9a-f]+ \S+$/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("anything else is refused, not misread", () => {
  expect(() => mapLines(new TextEncoder().encode("not a jitdump at all"))).toThrow(/not a jitdump/)
})
