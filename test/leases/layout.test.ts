// The contest table's layout check: csrc/lease.h, csrc/lease_internal.h, docs/PROTOCOL.md §7 and the lease block of
// src/native/ffi.ts must agree. Each check is a function of the texts, so the second half proves it notices
// a mismatch by mutating one side.
import { describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as ffi from "../../src/native/ffi.ts"
import {
  camel,
  cDefine,
  cEnum,
  cPrototypes,
  eq,
  ffiSymbols,
  fnv1a32,
  layoutTests,
  section,
  stripC,
} from "../support/c-text.ts"

const repo = join(import.meta.dir, "..", "..")
const read = (p: string) => readFileSync(join(repo, p), "utf8")

interface Sources {
  header: string
  core: string
  protocol: string
  ffiSource: string
}
interface TsConstants {
  HolderField: Record<string, number>
  HOLDER_BYTES: number
  limits: Record<string, number>
  LeaseHow: Record<string, number>
  CreateMode: Record<string, number>
  layoutHash: number
}

const real: Sources = {
  header: read("csrc/lease.h"),
  core: read("csrc/lease_internal.h"),
  protocol: read("docs/PROTOCOL.md"),
  ffiSource: read("src/native/ffi.ts"),
}
await ffi.loadNative() // the layout hash is the loaded library's
const realTs: TsConstants = {
  HolderField: ffi.HolderField,
  HOLDER_BYTES: ffi.HOLDER_BYTES,
  limits: {
    SBL_LABEL_MAX: ffi.LEASE_LABEL_MAX,
    SBL_OWNER_MAX: ffi.LEASE_OWNER_MAX,
    SBL_MAX_MEMBERS: ffi.LEASE_MAX_MEMBERS,
    SBL_MIN_CAPACITY: ffi.LEASE_MIN_CAPACITY,
    SBL_MAX_CAPACITY: ffi.LEASE_MAX_CAPACITY,
  },
  LeaseHow: ffi.LeaseHow,
  CreateMode: ffi.CreateModeValue,
  layoutHash: ffi.leaseNative.sbl_layout_hash(),
}

/** Field offsets of a C struct of fixed-width scalars and byte/array members, with natural alignment. */
function structOffsets(c: string, name: string): { offsets: Record<string, number>; size: number } {
  const m = new RegExp(`typedef\\s+struct\\s+${name}\\s*\\{([^}]*)\\}\\s*${name}\\s*;`).exec(stripC(c))
  if (!m) throw new Error(`struct ${name} not found`)
  const sizes: Record<string, number> = { uint8_t: 1, uint32_t: 4, int32_t: 4, uint64_t: 8, int64_t: 8, double: 8 }
  const offsets: Record<string, number> = {}
  let off = 0
  let maxAlign = 1
  for (const decl of m[1]!
    .split(";")
    .map((d) => d.trim())
    .filter(Boolean)) {
    const d = /^(\w+)\s+(.+)$/.exec(decl)
    if (!d || !(d[1]! in sizes)) throw new Error(`${name}: cannot read "${decl}"`)
    const size = sizes[d[1]!]!
    maxAlign = Math.max(maxAlign, size)
    for (const part of d[2]!.split(",").map((p) => p.trim())) {
      const a = /^(\w+)(?:\[(\w+)\])?$/.exec(part)
      if (!a) throw new Error(`${name}: cannot read "${part}"`)
      const count = a[2] === undefined ? 1 : /^\d+$/.test(a[2]) ? Number(a[2]) : cDefine(c, a[2])
      off = Math.ceil(off / size) * size
      offsets[a[1]!] = off
      off += size * count
    }
  }
  return { offsets, size: Math.ceil(off / maxAlign) * maxAlign }
}

type Check = (s: Sources, ts: TsConstants) => string[]

const checks: Record<string, Check> = {
  "the layout hash is FNV-1a 32 of the string PROTOCOL.md §7.2 quotes, which lease_internal.h uses": (s, ts) => {
    const quoted = /FNV-1a 32 of the ASCII string `(slotbus-lease[^`]+)`/.exec(s.protocol)?.[1]
    const inC = /#define LAYOUT_DESC "([^"]+)"/.exec(s.core)?.[1]
    if (!quoted) return ["PROTOCOL.md quotes no lease layout string"]
    return [
      ...eq("sbl_layout_hash() vs PROTOCOL.md", ts.layoutHash, fnv1a32(quoted)),
      ...eq("LAYOUT_DESC vs PROTOCOL.md", inC, quoted),
    ]
  },

  "HolderField offsets in ffi.ts are those of struct sbl_holder": (s, ts) => {
    const { offsets, size } = structOffsets(s.header, "sbl_holder")
    const fromC = Object.fromEntries(Object.entries(offsets).map(([k, v]) => [camel(k), v]))
    return [
      ...eq("HolderField vs sbl_holder", ts.HolderField, fromC),
      ...eq("HOLDER_BYTES vs sizeof(sbl_holder)", ts.HOLDER_BYTES, size),
    ]
  },

  "the create modes equal the SBL_CREATE_* #defines": (s, ts) =>
    Object.entries(ts.CreateMode).flatMap(([k, v]) =>
      eq(k, v, cDefine(s.header, `SBL_CREATE_${k.toUpperCase().replace("-", "_")}`)),
    ),
  "the limits in ffi.ts, lease.h, the layout string and PROTOCOL.md agree": (s, ts) => {
    const fromC = Object.fromEntries(Object.keys(ts.limits).map((k) => [k, cDefine(s.header, k)]))
    const str = /`(slotbus-lease\/[^`]+)`/.exec(s.protocol)?.[1] ?? ""
    const table = section(s.protocol, /^### 7\.2 Table layout/, /^#{2,3} /)
    return [
      ...eq("limits vs lease.h", ts.limits, fromC),
      ...eq("label limit in the layout string", Number(/label=(\d+)/.exec(str)?.[1]), ts.limits.SBL_LABEL_MAX),
      ...eq("owner limit in the layout string", Number(/owner=(\d+)/.exec(str)?.[1]), ts.limits.SBL_OWNER_MAX),
      ...eq("label length row", Number(/label length \(≤ (\d+)\)/.exec(table)?.[1]), ts.limits.SBL_LABEL_MAX),
      ...eq("owner length row", Number(/owner length \(≤ (\d+)\)/.exec(table)?.[1]), ts.limits.SBL_OWNER_MAX),
      ...eq("members in the layout", Number(/members\[(\d+)\]/.exec(table)?.[1]), ts.limits.SBL_MAX_MEMBERS),
      ...eq("magic", Number(/magic `(0x[0-9A-Fa-f]+)`/.exec(table)?.[1]), cDefine(s.header, "SBL_MAGIC")),
    ]
  },

  "the entry rows of PROTOCOL.md §7.2 sit where lease_internal.h asserts them": (s) => {
    const table = section(s.protocol, /^### 7\.2 Table layout/, /^#{2,3} /)
    const entryRows = table.slice(table.indexOf("Entry (256 bytes"))
    const rows: [string, RegExp][] = [
      ["label", /\| (\d+) \| u8\[\d+\] \| label \|/],
      ["waiters", /\| (\d+) \| u32 \| waiters/],
      ["wake_seq", /\| (\d+) \| u32 \| wake sequence/],
      ["word", /\| (\d+) \| u64 \| \*\*claim word\*\*/],
      ["token", /\| (\d+) \| u64 \| fencing token/],
      ["claimed_at", /\| (\d+) \| i64 \| claimed at/],
      ["expires_at", /\| (\d+) \| i64 \| expires at/],
      ["owner_len", /\| (\d+) \| u32 \| owner length/],
      ["owner", /\| (\d+) \| u8\[\d+\] \| owner label/],
    ]
    const core = stripC(s.core)
    return rows.flatMap(([field, re]) => {
      const off = re.exec(entryRows)?.[1]
      if (off === undefined) return [`PROTOCOL.md has no entry row for ${field}`]
      return new RegExp(`offsetof\\(entry_t, ${field}\\) == ${off}\\b`).test(core)
        ? []
        : [`entry_t.${field} is not asserted at ${off}`]
    })
  },

  "the claim states in the §7.4 diagram and the how values match the C enums": (s, ts) => {
    const sm = section(s.protocol, /^### 7\.4 Claim state machine/, /^#{2,3} /)
    const states = Object.fromEntries([...sm.matchAll(/\b([A-Z]+)\((\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]))
    return [
      ...eq("claim states vs enum sbl_claim_state", states, cEnum(s.header, "sbl_claim_state", "SBL_")),
      ...eq("LeaseHow vs enum sbl_how", ts.LeaseHow, cEnum(s.header, "sbl_how", "SBL_HOW_")),
    ]
  },

  "every sbl_ function in lease.h is bound in ffi.ts with the same types, and nothing else is": (s) => {
    const c = cPrototypes(s.header, "sbl_")
    const t = ffiSymbols(s.ffiSource, "leaseSymbols")
    const out: string[] = []
    for (const [name, sig] of c)
      out.push(...(t.has(name) ? eq(name, t.get(name), sig) : [`${name} is not bound in ffi.ts`]))
    for (const name of t.keys()) if (!c.has(name)) out.push(`${name} is bound in ffi.ts but not declared in lease.h`)
    if (c.size === 0) out.push("no prototypes found in lease.h")
    return out
  },
}

const textMutations: [string, (s: Sources) => Sources][] = [
  ["a create mode renumbered", (s) => ({ ...s, header: s.header.replace("SBL_CREATE_NEVER 1", "SBL_CREATE_NEVER 4") })],
  [
    "the layout string edited in PROTOCOL.md",
    (s) => ({ ...s, protocol: s.protocol.replace("entry=256 label=96", "entry=256 label=80") }),
  ],
  ["LAYOUT_DESC edited in lease_internal.h", (s) => ({ ...s, core: s.core.replace("member=64x256", "member=64x128") })],
  [
    "two sbl_holder fields swapped",
    (s) => ({
      ...s,
      header: s.header.replace(
        /uint32_t entry;(\s*[^\n]*\n\s*)uint32_t version;/,
        "uint32_t version;$1uint32_t entry;",
      ),
    }),
  ],
  [
    "a field added to sbl_holder",
    (s) => ({ ...s, header: s.header.replace("uint64_t token;", "uint32_t extra;\n  uint64_t token;") }),
  ],
  ["SBL_OWNER_MAX raised", (s) => ({ ...s, header: s.header.replace("SBL_OWNER_MAX 64u", "SBL_OWNER_MAX 80u") })],
  [
    "an entry row moved in PROTOCOL.md",
    (s) => ({ ...s, protocol: s.protocol.replace("| 128 | u64 | fencing token", "| 136 | u64 | fencing token") }),
  ],
  ["a claim state renumbered in PROTOCOL.md", (s) => ({ ...s, protocol: s.protocol.replace("HELD(2)", "HELD(3)") })],
  ["SBL_HOW_DEAD renumbered", (s) => ({ ...s, header: s.header.replace("SBL_HOW_DEAD = 2", "SBL_HOW_DEAD = 3") })],
  [
    "an argument added to a lease prototype",
    (s) => ({
      ...s,
      header: s.header.replace(
        "int sbl_release(sbl_contest *c, uint32_t entry, uint32_t version);",
        "int sbl_release(sbl_contest *c, uint32_t entry, uint32_t version, int force);",
      ),
    }),
  ],
  [
    "a binding with a wrong type",
    (s) => ({
      ...s,
      ffiSource: s.ffiSource.replace(
        "sbl_check: { args: [ptr, u32, u32, f64]",
        "sbl_check: { args: [ptr, u32, u32, i64]",
      ),
    }),
  ],
  [
    "a lease function declared but not bound",
    (s) => ({
      ...s,
      header: s.header.replace(
        "int sbl_reset_all(sbl_contest *c);",
        "int sbl_reset_all(sbl_contest *c);\nint sbl_extra(sbl_contest *c);",
      ),
    }),
  ],
]
const tsMutations: [string, (ts: TsConstants) => TsConstants][] = [
  ["HolderField.token moved", (ts) => ({ ...ts, HolderField: { ...ts.HolderField, token: 40 } })],
  ["HOLDER_BYTES off by 8", (ts) => ({ ...ts, HOLDER_BYTES: ts.HOLDER_BYTES + 8 })],
  ["LEASE_LABEL_MAX changed", (ts) => ({ ...ts, limits: { ...ts.limits, SBL_LABEL_MAX: 128 } })],
  ["LeaseHow.EXPIRED changed", (ts) => ({ ...ts, LeaseHow: { ...ts.LeaseHow, EXPIRED: 5 } })],
  ["a different layout hash", (ts) => ({ ...ts, layoutHash: (ts.layoutHash + 1) >>> 0 })],
]
layoutTests(
  {
    agree: "ffi.ts, lease.h, lease_internal.h and PROTOCOL.md §7 agree",
    fails: "the lease layout check fails on any mismatch",
  },
  checks,
  real,
  realTs,
  { text: textMutations, ts: tsMutations },
)
