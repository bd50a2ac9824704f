// What one node:ffi call costs from each of V8's tiers: 2 M calls of libslotbus's sb_abi_version (no arguments) a
// round, 8 rounds, ns a call. docs/perf/round-nine-node.md, stop 85.
//   node docs/perf/node-ffi-tier.mjs [library]                         # TurboFan once warm
//   node --max-opt=2 docs/perf/node-ffi-tier.mjs                       # Maglev at most
//   node --max-opt=1 docs/perf/node-ffi-tier.mjs                       # Sparkplug at most
//   node --no-opt --no-sparkplug --no-maglev docs/perf/node-ffi-tier.mjs   # the interpreter
import ffi from "node:ffi"
import { fileURLToPath } from "node:url"

const path = process.argv[2] ?? fileURLToPath(new URL("../../prebuilds/linux-x64/libslotbus.so", import.meta.url))
const { lib } = ffi.dlopen(path)
const f = lib.getFunctions({ sb_abi_version: { return: "u32", arguments: [] } }).sb_abi_version

function loop(n) {
  let s = 0
  for (let i = 0; i < n; i++) s += f()
  return s
}

const N = 2_000_000
const rounds = []
for (let r = 0; r < 8; r++) {
  const t = process.hrtime.bigint()
  loop(N)
  rounds.push((Number(process.hrtime.bigint() - t) / N).toFixed(1))
}
console.log(`ns a call, 8 rounds: ${rounds.join(" ")}`)
