// Names for JavaScriptCore's JIT code in `perf report`: turns the jitdump files Bun writes with
// BUN_JSC_useJITDump=1 into /tmp/perf-<pid>.map, which perf reads for anonymous code. (`perf inject --jit` would
// read the dumps itself, but it wants them named jit-<pid>.dump; Bun names them jit-<thread>-<pid>.dump.)
//   BUN_JSC_useJITDump=1 BUN_JSC_jitDumpDirectory=DIR perf record -k 1 -F 10000 -g bun …
//   bun bench/lib/jit-map.ts DIR && perf report
// The jitdump format: https://github.com/torvalds/linux/blob/master/tools/perf/Documentation/jitdump-specification.txt
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const CODE_LOAD = 0

/** "address size name" lines for every code load record of one jitdump file. */
export function mapLines(dump: Uint8Array): string[] {
  const view = new DataView(dump.buffer, dump.byteOffset, dump.byteLength)
  if (view.getUint32(0, true) !== 0x4a695444) throw new Error("not a jitdump file (magic JiTD)")
  const lines: string[] = []
  for (let at = view.getUint32(8, true); at + 16 <= dump.length; ) {
    const id = view.getUint32(at, true)
    const size = view.getUint32(at + 4, true)
    if (size < 16 || at + size > dump.length) break // a record still being written when the process ended
    if (id === CODE_LOAD) {
      // after id, size, timestamp: pid, tid (u32), vma, code address, code size, code index (u64), name, code
      const addr = view.getBigUint64(at + 32, true)
      const codeSize = view.getBigUint64(at + 40, true)
      const nameEnd = dump.indexOf(0, at + 56)
      const name = new TextDecoder().decode(dump.subarray(at + 56, nameEnd)).replaceAll(" ", "_")
      lines.push(`${addr.toString(16)} ${codeSize.toString(16)} ${name}`)
    }
    at += size
  }
  return lines
}

if (import.meta.main) {
  const dir = process.argv[2] ?? "."
  for (const file of readdirSync(dir)) {
    const m = /^jit-\d+-(\d+)\.dump$/.exec(file)
    if (!m) continue
    const lines = mapLines(readFileSync(join(dir, file)))
    writeFileSync(`/tmp/perf-${m[1]}.map`, `${lines.join("\n")}\n`)
    console.log(`/tmp/perf-${m[1]}.map: ${lines.length} functions from ${file}`)
  }
}
