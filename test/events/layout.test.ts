// The topic's layout check: the constants and the topic FFI table in src/native/ffi.ts, csrc/topic.h and
// docs/PROTOCOL.md §8 must agree exactly; the second half mutates each side to prove the check notices.
import { describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as ffi from "../../src/native/ffi.ts"
import {
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
  protocol: string
  ffiSource: string
}
interface Ts {
  TopicConst: Record<string, number>
  TopicLayout: Record<string, number>
  SubField: Record<string, number>
  PubField: Record<string, number>
  EntryState: Record<string, number>
  RecState: Record<string, number>
  Encoding: Record<string, number>
  FilterMode: Record<string, number>
  PubFlag: Record<string, number>
  CreateMode: Record<string, number>
  layoutHash: number
}

const real: Sources = {
  header: read("csrc/topic.h"),
  protocol: read("docs/PROTOCOL.md"),
  ffiSource: read("src/native/ffi.ts"),
}
await ffi.loadNative()
const realTs: Ts = {
  TopicConst: ffi.TopicConst,
  TopicLayout: ffi.TopicLayout,
  SubField: ffi.SubField,
  PubField: ffi.PubField,
  EntryState: ffi.EntryState,
  RecState: ffi.RecState,
  Encoding: ffi.Encoding,
  FilterMode: ffi.FilterMode,
  PubFlag: ffi.PubFlag,
  CreateMode: ffi.CreateModeValue,
  layoutHash: ffi.topicNative.sb_topic_layout_hash(),
}

const sorted = (o: Record<string, number>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)))

const checks: Record<string, (s: Sources, ts: Ts) => string[]> = {
  "TopicConst equals the #defines of topic.h": (s, ts) =>
    Object.entries(ts.TopicConst).flatMap(([k, v]) =>
      k === "E_CORRUPT"
        ? eq(k, v, -cDefine(s.header, "SB_TOPIC_ECORRUPT"))
        : k.startsWith("FROM_")
          ? eq(k, v, cDefine(s.header, `SB_${k}`))
          : eq(k, v, cDefine(s.header, `SB_TOPIC_${k}`)),
    ),
  "the create modes equal the SB_CREATE_* #defines": (s, ts) =>
    Object.entries(ts.CreateMode).flatMap(([k, v]) =>
      eq(k, v, cDefine(s.header, `SB_CREATE_${k.toUpperCase().replace("-", "_")}`)),
    ),
  "TopicLayout, SubField and the state enums equal topic.h": (s, ts) => [
    ...eq("TopicLayout", sorted(ts.TopicLayout), sorted(cEnum(s.header, "sb_topic_layout", "SB_TOPIC_"))),
    ...eq("SubField", sorted(ts.SubField), sorted(cEnum(s.header, "sb_topic_sub_field", "SB_SUB_"))),
    ...eq("PubField", sorted(ts.PubField), sorted(cEnum(s.header, "sb_topic_pub_field", "SB_PUBLISHER_"))),
    ...eq("EntryState", sorted(ts.EntryState), sorted(cEnum(s.header, "sb_topic_entry_state", "SB_ENTRY_"))),
    ...eq("RecState", sorted(ts.RecState), sorted(cEnum(s.header, "sb_topic_rec_state", "SB_REC_"))),
    ...eq("Encoding", sorted(ts.Encoding), sorted(cEnum(s.header, "sb_topic_encoding", "SB_ENC_"))),
    ...eq("FilterMode", sorted(ts.FilterMode), sorted(cEnum(s.header, "sb_topic_filter_mode", "SB_FILTER_"))),
    ...eq("PubFlag", sorted(ts.PubFlag), sorted(cEnum(s.header, "sb_topic_pub_flags", "SB_PUB_"))),
  ],
  "PROTOCOL.md §8 has the same magic, offsets and record states": (s, ts) => {
    const sec = section(s.protocol, /^## 8\. Topics/)
    const row = (field: RegExp) => {
      const m = new RegExp(`^\\| (\\d+) \\| \\w+(?:\\[\\d+\\])? \\| ${field.source}`, "m").exec(sec)
      return m ? Number(m[1]) : undefined
    }
    return [
      ...eq("magic", Number(/magic `(0x[0-9A-Fa-f]+)`/.exec(sec)?.[1]), ts.TopicConst.MAGIC),
      ...eq("tail", row(/\*\*tail\*\*/), ts.TopicLayout.OFF_TAIL),
      ...eq("sleepers", row(/\*\*sleepers\*\*/), ts.TopicLayout.OFF_SLEEPERS),
      ...eq("keeper pid", row(/keeper pid/), ts.TopicLayout.OFF_KEEPER_PID),
      ...eq("segment index", row(/\*\*segment index\*\*/), ts.TopicLayout.OFF_SEGMENTS),
      ...eq("fenced", row(/\*\*fenced\*\*/), ts.TopicLayout.OFF_FENCED),
      ...eq("bridged", row(/\*\*bridged\*\*/), ts.TopicLayout.OFF_BRIDGED),
      ...eq("bridge pid", row(/bridge pid/), ts.TopicLayout.OFF_BRIDGE_PID),
      ...eq("books", row(/\*\*books\*\*/), ts.TopicLayout.OFF_BOOKS),
      ...eq("fence", row(/\*\*fence\*\*/), ts.PubField.FENCE),
      ...eq("version", Number(/\| 4 \| u32 \| version `(\d+)`/.exec(sec)?.[1]), ts.TopicConst.VERSION),
      ...eq("cursor", row(/\*\*cursor\*\*/), ts.SubField.CURSOR),
      ...eq("lagged", row(/lagged/), ts.SubField.LAGGED),
      ...eq("filter", row(/filter \(/), ts.SubField.FILTER),
      ...eq("data offset", Number(/DATA\s+= (\d+)/.exec(sec)?.[1]), ts.TopicLayout.OFF_DATA),
      ...eq("record states", /state: 1 writing, 2 event, 3 padding, 4 aborted/.test(sec), true),
    ]
  },
  "the topic layout hash is FNV-1a 32 of the string quoted in PROTOCOL.md §8": (s, ts) => {
    const quoted = /FNV-1a 32 of `(slotbus-topic[^`]+)`/.exec(section(s.protocol, /^## 8\. Topics/))?.[1]
    if (!quoted) return ["PROTOCOL.md §8 quotes no layout string"]
    return eq(`sb_topic_layout_hash() vs fnv1a32("${quoted}")`, ts.layoutHash, fnv1a32(quoted))
  },
  "every function of topic.h is in the topic FFI table with the same types, and nothing else is": (s) => {
    const c = cPrototypes(s.header, "sb_"),
      t = ffiSymbols(s.ffiSource, "topicSymbols"),
      out: string[] = []
    for (const [name, proto] of c)
      out.push(...(t.has(name) ? eq(name, t.get(name), proto) : [`${name} is not bound in ffi.ts`]))
    for (const name of t.keys()) if (!c.has(name)) out.push(`${name} is bound in ffi.ts but not declared in topic.h`)
    if (c.size < 20) out.push("too few prototypes found in topic.h")
    return out
  },
}

layoutTests(
  { agree: "ffi.ts, topic.h and PROTOCOL.md §8 agree", fails: "the topic layout check fails on any mismatch" },
  checks,
  real,
  realTs,
  {
    text: [
      [
        "a define changed",
        (s) => ({ ...s, header: s.header.replace("SB_TOPIC_MAX_SUBS 64u", "SB_TOPIC_MAX_SUBS 65u") }),
      ],
      [
        "an offset moved in the header",
        (s) => ({ ...s, header: s.header.replace("SB_TOPIC_OFF_DATA = 286720", "SB_TOPIC_OFF_DATA = 290816") }),
      ],
      [
        "a record state renumbered",
        (s) => ({ ...s, header: s.header.replace("SB_REC_ABORTED = 4", "SB_REC_ABORTED = 5") }),
      ],
      [
        "the fence moved in the header",
        (s) => ({ ...s, header: s.header.replace("SB_PUBLISHER_FENCE = 24", "SB_PUBLISHER_FENCE = 32") }),
      ],
      [
        "the fenced counter moved in PROTOCOL",
        (s) => ({ ...s, protocol: s.protocol.replace("| 216 | u64 | **fenced**", "| 224 | u64 | **fenced**") }),
      ],
      [
        "the version bumped in the header only",
        (s) => ({ ...s, header: s.header.replace("SB_TOPIC_VERSION 3u", "SB_TOPIC_VERSION 4u") }),
      ],
      [
        "a subscriber field moved",
        (s) => ({ ...s, header: s.header.replace("SB_SUB_LAGGED = 32", "SB_SUB_LAGGED = 40") }),
      ],
      ["a create mode renumbered", (s) => ({ ...s, header: s.header.replace("SB_CREATE_MUST 2", "SB_CREATE_MUST 3") })],
      ["the layout string edited", (s) => ({ ...s, protocol: s.protocol.replace("sub=256x64", "sub=256x65") })],
      [
        "a PROTOCOL row moved",
        (s) => ({ ...s, protocol: s.protocol.replace("| 64 | u64 | **tail**", "| 72 | u64 | **tail**") }),
      ],
      [
        "an argument added to a prototype",
        (s) => ({
          ...s,
          header: s.header.replace(
            "int sb_sub_poll(sb_sub *s, uint32_t max);",
            "int sb_sub_poll(sb_sub *s, uint32_t max, int x);",
          ),
        }),
      ],
      [
        "a binding with a wrong type",
        (s) => ({
          ...s,
          ffiSource: s.ffiSource.replace(
            "sb_sub_poll: { args: [ptr, u32], returns: i32 }",
            "sb_sub_poll: { args: [ptr, i32], returns: i32 }",
          ),
        }),
      ],
    ],
    ts: [
      ["a TS offset off", (ts) => ({ ...ts, TopicLayout: { ...ts.TopicLayout, OFF_TAIL: 72 } })],
      ["a TS fence offset off", (ts) => ({ ...ts, PubField: { ...ts.PubField, FENCE: 16 } })],
      ["a TS state off", (ts) => ({ ...ts, RecState: { ...ts.RecState, EVENT: 9 } })],
      ["another layout hash", (ts) => ({ ...ts, layoutHash: (ts.layoutHash + 1) >>> 0 })],
    ],
  },
)
