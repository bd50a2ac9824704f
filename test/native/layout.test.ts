// The layout check: the TS constants in src/native/ffi.ts, csrc/slotbus.h and docs/PROTOCOL.md must agree exactly.
// Each check reads the C header and the protocol page as text, so a change on one side fails here until the
// others follow. The checks are functions of the texts so the second half of this file can prove they notice
// a mismatch.
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
  header: string // csrc/slotbus.h
  core: string // csrc/slot_internal.h: the region's structs
  protocol: string // docs/PROTOCOL.md
  ffiSource: string // src/native/ffi.ts
}

interface TsConstants {
  Msg: Record<string, number>
  MSG_WORDS: number
  HUB_CONFIG_WORDS: number
  HubConfig: Record<string, number>
  MAX_ALLOW_UIDS: number
  State: Record<string, number>
  Kind: Record<string, number>
  RespFlag: Record<string, number>
  E_CORRUPT: number
  Control: Record<string, number>
  CANCEL_SEQ_OFFSET: number
  VITALS_OFFSET: number
  layoutHash: number
  expectedLayoutHash: number
  abiVersion: number
  wireVersion: number
  libraryAbi: number
}

const real: Sources = {
  header: read("csrc/slotbus.h"),
  core: read("csrc/slot_internal.h"),
  protocol: read("docs/PROTOCOL.md"),
  ffiSource: read("src/native/ffi.ts"),
}

await ffi.loadNative()
const realTs: TsConstants = {
  Msg: ffi.Msg,
  MSG_WORDS: ffi.MSG_WORDS,
  HUB_CONFIG_WORDS: ffi.HUB_CONFIG_WORDS,
  HubConfig: ffi.HubConfig,
  MAX_ALLOW_UIDS: ffi.MAX_ALLOW_UIDS,
  State: ffi.State,
  Kind: ffi.Kind,
  RespFlag: ffi.RespFlag,
  E_CORRUPT: ffi.E_CORRUPT,
  Control: ffi.Control,
  CANCEL_SEQ_OFFSET: ffi.CANCEL_SEQ_OFFSET,
  VITALS_OFFSET: ffi.VITALS_OFFSET,
  layoutHash: ffi.native.sb_layout_hash(),
  expectedLayoutHash: ffi.LAYOUT_HASH,
  abiVersion: ffi.ABI_VERSION,
  wireVersion: ffi.WIRE_VERSION,
  libraryAbi: ffi.native.sb_abi_version(),
}

// ---- reading C and Markdown as text ----

interface Field {
  type: string
  name: string
  count: number
}

function cStruct(c: string, body: RegExp, what: string): Field[] {
  const m = body.exec(stripC(c))
  if (!m) throw new Error(`${what} not found`)
  const fields: Field[] = []
  for (const decl of m[1]!
    .split(";")
    .map((d) => d.trim())
    .filter(Boolean)) {
    const d = /^((?:_Atomic\s+)?\w+)\s+(.+)$/.exec(decl)
    if (!d) throw new Error(`${what}: cannot read "${decl}"`)
    for (const part of d[2]!.split(",").map((p) => p.trim())) {
      const a = /^(\w+)(?:\[(\w+)\])?$/.exec(part)
      if (!a) throw new Error(`${what}: cannot read "${part}"`)
      const count = a[2] === undefined ? 1 : /^\d+$/.test(a[2]) ? Number(a[2]) : cDefine(c, a[2])
      fields.push({ type: d[1]!, name: a[1]!, count })
    }
  }
  return fields
}

const typedefStruct = (c: string, name: string) =>
  cStruct(c, new RegExp(`typedef\\s+struct\\s+${name}\\s*\\{([^}]*)\\}\\s*${name}\\s*;`), `struct ${name}`)
const WORD_TYPES = /^(?:_Atomic\s+)?u?int32_t$/

// ---- the checks: each returns its mismatches, [] when everything agrees ----

type Check = (s: Sources, ts: TsConstants) => string[]

const checks: Record<string, Check> = {
  "Msg lists the fields of struct sb_msg in order, one u32 word each": (s, ts) => {
    const fields = typedefStruct(s.header, "sb_msg")
    const bad = fields
      .filter((f) => !WORD_TYPES.test(f.type) || f.count !== 1)
      .map((f) => `sb_msg.${f.name} is not one 32-bit word`)
    const tsOrder = Object.entries(ts.Msg)
      .sort((a, b) => a[1] - b[1])
      .map(([k]) => k)
    return [
      ...bad,
      ...eq(
        "Msg field order vs sb_msg",
        tsOrder,
        fields.map((f) => camel(f.name)),
      ),
      ...eq(
        "Msg indices",
        Object.values(ts.Msg).sort((a, b) => a - b),
        fields.map((_, i) => i),
      ),
      ...eq("MSG_WORDS vs sb_msg", ts.MSG_WORDS, fields.length),
    ]
  },

  "HUB_CONFIG_WORDS and MAX_ALLOW_UIDS match struct sb_hub_config": (s, ts) => {
    const fields = typedefStruct(s.header, "sb_hub_config")
    const bad = fields
      .filter((f) => !WORD_TYPES.test(f.type))
      .map((f) => `sb_hub_config.${f.name} is not made of 32-bit words`)
    const uids = fields.find((f) => f.name === "allow_uids")
    return [
      ...bad,
      ...eq(
        "HUB_CONFIG_WORDS vs sb_hub_config",
        ts.HUB_CONFIG_WORDS,
        fields.reduce((n, f) => n + f.count, 0),
      ),
      ...eq("MAX_ALLOW_UIDS vs SB_MAX_ALLOW_UIDS", ts.MAX_ALLOW_UIDS, cDefine(s.header, "SB_MAX_ALLOW_UIDS")),
      ...eq("allow_uids length vs SB_MAX_ALLOW_UIDS", uids?.count, cDefine(s.header, "SB_MAX_ALLOW_UIDS")),
      ...eq("allow_uids is the last field", fields.at(-1)?.name, "allow_uids"),
    ]
  },

  "HubConfig names the word where each field of struct sb_hub_config starts": (s, ts) => {
    const fields = typedefStruct(s.header, "sb_hub_config")
    let word = 0
    const starts = Object.fromEntries(fields.map((f) => [camel(f.name), (word += f.count) - f.count]))
    return eq("HubConfig vs sb_hub_config", ts.HubConfig, starts)
  },

  "State, Kind and RespFlag equal the C enums": (s, ts) => [
    ...eq("State vs enum sb_state", ts.State, cEnum(s.header, "sb_state", "SB_")),
    ...eq("Kind vs enum sb_kind", ts.Kind, cEnum(s.header, "sb_kind", "SB_KIND_")),
    ...eq("RespFlag vs enum sb_resp_flags", ts.RespFlag, cEnum(s.header, "sb_resp_flags", "SB_RESP_")),
  ],

  "E_CORRUPT is minus SB_ECORRUPT": (s, ts) =>
    eq("E_CORRUPT vs -SB_ECORRUPT", ts.E_CORRUPT, -cDefine(s.header, "SB_ECORRUPT")),

  "the state machine, kinds and flags in PROTOCOL.md match": (s, ts) => {
    const sm = section(s.protocol, /^## 3\. Slot state machine/)
    const states = Object.fromEntries([...sm.matchAll(/\b([A-Z]+)\((\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]))
    const slotTable = section(s.protocol, /^## 2\. Region layout/)
    const kinds = /request kind:\s*0 = raw, 1 = http/.test(slotTable) ? { RAW: 0, HTTP: 1 } : {}
    const flags = /bit 0 = handler error, bit 1 = cancelled/.test(slotTable) ? { ERROR: 1, CANCELLED: 2 } : {}
    return [
      ...eq("State vs PROTOCOL.md §3", ts.State, states),
      ...eq("Kind vs PROTOCOL.md §2", ts.Kind, kinds),
      ...eq("RespFlag vs PROTOCOL.md §2", ts.RespFlag, flags),
    ]
  },

  "the magic, version and slot limit in PROTOCOL.md match the header": (s, ts) => {
    const md = s.protocol
    const magic = /magic `(0x[0-9A-Fa-f]+)`/.exec(md)?.[1]
    const version = /# slotbus wire protocol, version (\d+)/.exec(md)?.[1]
    const slots = /slot_count \(1 … (\d+)\)/.exec(md)?.[1]
    return [
      ...eq("magic", Number(magic), cDefine(s.header, "SB_MAGIC")),
      ...eq("version", Number(version), cDefine(s.header, "SB_VERSION")),
      ...eq("WIRE_VERSION in ffi.ts", ts.wireVersion, cDefine(s.header, "SB_VERSION")),
      ...eq("max slots", Number(slots), cDefine(s.header, "SB_MAX_SLOTS")),
    ]
  },

  "the slot header in PROTOCOL.md matches the C slot_hdr word for word": (s) => {
    const fields = cStruct(s.core, /typedef\s+struct\s*\{([^}]*)\}\s*slot_hdr\s*;/, "slot_hdr")
    // C name -> the words PROTOCOL.md uses for it, at 4-byte offsets from 0.
    const names: [string, RegExp][] = [
      ["state", /state word/],
      ["kind", /request kind/],
      ["id", /request id/],
      ["req_head", /request head length/],
      ["req_body", /request body length/],
      ["status", /response status/],
      ["flags", /response flags/],
      ["resp_head", /response head length/],
      ["resp_body", /response body length/],
      ["cancel", /cancel word/],
      ["window", /stream window/],
      ["limit", /\*\*limit\*\*/],
      ["produced", /\*\*produced\*\*/],
      ["notify", /\*\*notify\*\*/],
    ]
    const rows = [...section(s.protocol, /^## 2\. Region layout/).matchAll(/^\| (\d+) \| u32 \| ([^|]+)\|/gm)]
    const out: string[] = []
    names.forEach(([cName, phrase], i) => {
      const f = fields[i]
      if (f?.name !== cName || f.count !== 1 || !WORD_TYPES.test(f.type))
        out.push(`slot_hdr field ${i} is ${f?.name}, expected ${cName}`)
      const row = rows.find((r) => phrase.test(r[2]!))
      if (!row || Number(row[1]) !== 4 * i)
        out.push(`PROTOCOL.md slot header: ${phrase} should be at offset ${4 * i}, found ${row?.[1]}`)
    })
    const reserved = fields[names.length]
    const reservedRow = /\| (\d+)\.\.(\d+) \| \| reserved/.exec(s.protocol)
    out.push(
      ...eq(
        "slot_hdr reserved words",
        reserved?.count,
        reservedRow ? (Number(reservedRow[2]) + 1 - Number(reservedRow[1])) / 4 : -1,
      ),
    )
    out.push(...eq("slot_hdr ends after reserved", fields.length, names.length + 1))
    return out
  },

  "the parked words sit where PROTOCOL.md §5 says": (s) => {
    const sec = section(s.protocol, /^## 5\. Sleeping and waking/)
    const worker = /worker_parked` at (\d+)/.exec(sec)?.[1]
    const hub = /hub_parked` at (\d+)/.exec(sec)?.[1]
    const core = stripC(s.core)
    return [
      ...eq(
        "worker_parked offset",
        new RegExp(`offsetof\\(region_hdr, worker_parked\\) == ${worker}\\b`).test(core),
        true,
      ),
      ...eq("hub_parked offset", new RegExp(`offsetof\\(region_hdr, hub_parked\\) == ${hub}\\b`).test(core), true),
    ]
  },

  "cancel_seq sits where PROTOCOL.md §2 says, and ffi.ts reads it there": (s, ts) => {
    const line = /^(\d+)\s+line \d+: cancel_seq/m.exec(section(s.protocol, /^## 2\. Region layout/))?.[1]
    return [
      ...eq("cancel_seq offset in PROTOCOL.md vs CANCEL_SEQ_OFFSET", Number(line), ts.CANCEL_SEQ_OFFSET),
      ...eq(
        "cancel_seq offset in slot_internal.h",
        new RegExp(`offsetof\\(region_hdr, cancel_seq\\) == ${ts.CANCEL_SEQ_OFFSET}\\b`).test(stripC(s.core)),
        true,
      ),
    ]
  },

  "the worker's vitals line sits where PROTOCOL.md §2 says, past every header field libslotbus keeps": (s, ts) => {
    const line = /^(\d+)\s+line \d+: worker runtime/m.exec(section(s.protocol, /^## 2\. Region layout/))?.[1]
    const kept = [...stripC(s.core).matchAll(/offsetof\(region_hdr, \w+\) == (\d+)/g)].map((m) => Number(m[1]))
    const hdrBytes = Number(/#define HDR_BYTES (\d+)u/.exec(s.core)?.[1])
    return [
      ...eq("worker runtime offset in PROTOCOL.md vs VITALS_OFFSET", Number(line), ts.VITALS_OFFSET),
      ...eq("the last region_hdr field C keeps comes before it", Math.max(...kept) + 64 <= ts.VITALS_OFFSET, true),
      ...eq("its line fits in the header", ts.VITALS_OFFSET + 64 <= hdrBytes, true),
    ]
  },

  "Control bytes equal the ones PROTOCOL.md §1 names": (s, ts) => {
    const sec = section(s.protocol, /^## 1\. Rendezvous/)
    const named = [...sec.matchAll(/`'(.)'` \((\w+)\)/g)]
    const byte = (word: string) => named.find((m) => m[2] === word)?.[1]?.charCodeAt(0)
    return eq("Control vs PROTOCOL.md §1", ts.Control, {
      DRAIN: byte("drain"),
      DRAIN_ACK: byte("ack"),
      HUB_CLOSING: byte("closing"),
    })
  },

  "the layout hash is FNV-1a 32 of the layout string quoted in PROTOCOL.md": (s, ts) => {
    const quoted = /FNV-1a 32 of the ASCII string `([^`]+)`/.exec(s.protocol)?.[1]
    if (!quoted) return ["PROTOCOL.md quotes no layout string"]
    return eq(`sb_layout_hash() vs fnv1a32("${quoted}")`, ts.layoutHash, fnv1a32(quoted))
  },

  "the loader expects the library's layout hash and SB_ABI_VERSION": (s, ts) => [
    ...eq("LAYOUT_HASH in ffi.ts vs sb_layout_hash()", ts.expectedLayoutHash, ts.layoutHash),
    ...eq("ABI_VERSION in ffi.ts vs SB_ABI_VERSION in slotbus.h", ts.abiVersion, cDefine(s.header, "SB_ABI_VERSION")),
    ...eq("ABI_VERSION in ffi.ts vs sb_abi_version()", ts.abiVersion, ts.libraryAbi),
  ],

  "every function in slotbus.h is bound in ffi.ts with the same argument and return types, and nothing else is": (
    s,
  ) => {
    const c = cPrototypes(s.header, "sb_")
    const t = ffiSymbols(s.ffiSource, "symbols")
    const out: string[] = []
    for (const [name, proto] of c) {
      const bound = t.get(name)
      if (!bound) out.push(`${name} is declared in slotbus.h but not bound in ffi.ts`)
      else out.push(...eq(name, bound, proto))
    }
    for (const name of t.keys()) if (!c.has(name)) out.push(`${name} is bound in ffi.ts but not declared in slotbus.h`)
    if (c.size === 0) out.push("no prototypes found in slotbus.h")
    return out
  },
}

describe("ffi.ts, slotbus.h and PROTOCOL.md agree", () => {
  test("the FNV-1a used here is the standard one", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5)
    expect(fnv1a32("a")).toBe(0xe40c292c)
    expect(fnv1a32("foobar")).toBe(0xbf9cf968)
  })
})

// ---- the checks notice drift: each mutation of one side must produce at least one mismatch ----

const swapMsgFields = (h: string) =>
  h.replace(/uint32_t head_len;\s*\n(\s*)uint32_t body_len;/, "uint32_t body_len;\n$1uint32_t head_len;")
const textMutations: [string, (s: Sources) => Sources][] = [
  ["two sb_msg fields swapped", (s) => ({ ...s, header: swapMsgFields(s.header) })],
  [
    "a field added to sb_msg",
    (s) => ({ ...s, header: s.header.replace(/(uint32_t body_off;)/, "$1\n  uint32_t extra;") }),
  ],
  [
    "SB_ABI_VERSION bumped",
    (s) => ({
      ...s,
      header: s.header.replace(/#define SB_ABI_VERSION (\d+)u/, (_, v) => `#define SB_ABI_VERSION ${Number(v) + 1}u`),
    }),
  ],
  ["SB_DONE renumbered", (s) => ({ ...s, header: s.header.replace("SB_DONE = 4", "SB_DONE = 6") })],
  [
    "a state added to the enum",
    (s) => ({ ...s, header: s.header.replace("SB_CANCELLED = 5", "SB_CANCELLED = 5, SB_LOST = 6") }),
  ],
  ["SB_KIND_HTTP renumbered", (s) => ({ ...s, header: s.header.replace("SB_KIND_HTTP = 1", "SB_KIND_HTTP = 2") })],
  [
    "SB_RESP_CANCELLED renumbered",
    (s) => ({ ...s, header: s.header.replace("SB_RESP_CANCELLED = 2", "SB_RESP_CANCELLED = 4") }),
  ],
  [
    "SB_MAX_ALLOW_UIDS raised",
    (s) => ({ ...s, header: s.header.replace(/SB_MAX_ALLOW_UIDS 8u/, "SB_MAX_ALLOW_UIDS 16u") }),
  ],
  [
    "a field added to sb_hub_config",
    (s) => ({ ...s, header: s.header.replace(/(uint32_t trim_bytes;)/, "$1\n  uint32_t flags;") }),
  ],
  ["SB_ECORRUPT changed", (s) => ({ ...s, header: s.header.replace(/SB_ECORRUPT 1000/, "SB_ECORRUPT 1001") })],
  [
    "the layout string in PROTOCOL.md edited",
    (s) => ({ ...s, protocol: s.protocol.replace("hdr=1024 slot=64", "hdr=1024 slot=128") }),
  ],
  [
    "cancel_seq moved in PROTOCOL.md",
    (s) => ({ ...s, protocol: s.protocol.replace("448    line 7: cancel_seq", "512    line 7: cancel_seq") }),
  ],
  [
    "the worker vitals line moved in PROTOCOL.md",
    (s) => ({ ...s, protocol: s.protocol.replace("512    line 8: worker runtime", "576    line 8: worker runtime") }),
  ],
  [
    "a region_hdr field of C's on the worker vitals line",
    (s) => ({
      ...s,
      core: s.core.replace("offsetof(region_hdr, cancel_seq) == 448", "offsetof(region_hdr, cancel_seq) == 512"),
    }),
  ],
  [
    "the cancel word dropped from PROTOCOL.md's slot header",
    (s) => ({ ...s, protocol: s.protocol.replace("| 36 | u32 | cancel word", "| 36 | u32 | spare") }),
  ],
  [
    "a state renumbered in PROTOCOL.md",
    (s) => ({ ...s, protocol: s.protocol.replace("CANCELLED(5)", "CANCELLED(6)") }),
  ],
  [
    "the flag bits swapped in PROTOCOL.md",
    (s) => ({
      ...s,
      protocol: s.protocol.replace(
        "bit 0 = handler error, bit 1 = cancelled",
        "bit 0 = cancelled, bit 1 = handler error",
      ),
    }),
  ],
  [
    "a slot header row moved in PROTOCOL.md",
    (s) => ({ ...s, protocol: s.protocol.replace("| 20 | u32 | response status", "| 24 | u32 | response status") }),
  ],
  [
    "a control byte changed in PROTOCOL.md",
    (s) => ({ ...s, protocol: s.protocol.replace("`'A'` (ack)", "`'K'` (ack)") }),
  ],
  [
    "an argument added to a C prototype",
    (s) => ({
      ...s,
      header: s.header.replace(
        "int sb_hub_cancel(sb_chan *ch, uint32_t slot);",
        "int sb_hub_cancel(sb_chan *ch, uint32_t slot, int force);",
      ),
    }),
  ],
  [
    "a C return type changed",
    (s) => ({ ...s, header: s.header.replace("uint32_t sb_layout_hash(void);", "uint64_t sb_layout_hash(void);") }),
  ],
  [
    "a function declared but not bound",
    (s) => ({
      ...s,
      header: s.header.replace(
        "void sb_close(sb_chan *ch);",
        "void sb_close(sb_chan *ch);\nint sb_new_thing(sb_chan *ch);",
      ),
    }),
  ],
  [
    "an FFI binding with a wrong argument type",
    (s) => ({
      ...s,
      ffiSource: s.ffiSource.replace("sb_hub_cancel: { args: [ptr, u32]", "sb_hub_cancel: { args: [ptr, i32]"),
    }),
  ],
]

const tsMutations: [string, (ts: TsConstants) => TsConstants][] = [
  [
    "Msg.headLen and Msg.bodyLen swapped",
    (ts) => ({ ...ts, Msg: { ...ts.Msg, headLen: ts.Msg.bodyLen!, bodyLen: ts.Msg.headLen! } }),
  ],
  ["MSG_WORDS off by one", (ts) => ({ ...ts, MSG_WORDS: ts.MSG_WORDS + 1 })],
  ["HUB_CONFIG_WORDS off by one", (ts) => ({ ...ts, HUB_CONFIG_WORDS: ts.HUB_CONFIG_WORDS - 1 })],
  [
    "HubConfig.streamWindow and HubConfig.allowUidCount swapped",
    (ts) => ({ ...ts, HubConfig: { ...ts.HubConfig, streamWindow: 4, allowUidCount: 5 } }),
  ],
  ["CANCEL_SEQ_OFFSET off by a line", (ts) => ({ ...ts, CANCEL_SEQ_OFFSET: ts.CANCEL_SEQ_OFFSET + 64 })],
  ["VITALS_OFFSET off by a line", (ts) => ({ ...ts, VITALS_OFFSET: ts.VITALS_OFFSET + 64 })],
  ["MAX_ALLOW_UIDS changed", (ts) => ({ ...ts, MAX_ALLOW_UIDS: 9 })],
  ["State.DONE changed", (ts) => ({ ...ts, State: { ...ts.State, DONE: 7 } })],
  ["Kind.RAW changed", (ts) => ({ ...ts, Kind: { ...ts.Kind, RAW: 3 } })],
  ["RespFlag.ERROR changed", (ts) => ({ ...ts, RespFlag: { ...ts.RespFlag, ERROR: 4 } })],
  ["E_CORRUPT positive", (ts) => ({ ...ts, E_CORRUPT: 1000 })],
  ["Control.DRAIN changed", (ts) => ({ ...ts, Control: { ...ts.Control, DRAIN: 0x45 } })],
  ["a different layout hash", (ts) => ({ ...ts, layoutHash: (ts.layoutHash + 1) >>> 0 })],
  ["ffi.ts expecting another layout hash", (ts) => ({ ...ts, expectedLayoutHash: (ts.expectedLayoutHash + 1) >>> 0 })],
]

layoutTests(
  { agree: "ffi.ts, slotbus.h and PROTOCOL.md agree", fails: "the layout check fails on any mismatch" },
  checks,
  real,
  realTs,
  { text: textMutations, ts: tsMutations },
)
