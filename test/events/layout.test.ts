// The topic's layout check: the constants in src/native/topic-layout.ts and the topic FFI table in src/native/ffi.ts, csrc/topic.h and
// docs/PROTOCOL.md §8 must agree exactly, and the files of src/events that map the topic's header read it through
// those names only; the second half mutates each side to prove the check notices.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import * as ffi from "../../src/native/ffi.ts"
import * as layout from "../../src/native/topic-layout.ts"
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
  /** The files of src/events that map the topic's header (call sb_topic_region), by name. */
  headerReaders: Record<string, string>
}
interface Ts {
  TopicConst: Record<string, number>
  TopicLayout: Record<string, number>
  SubField: Record<string, number>
  PubField: Record<string, number>
  BookField: Record<string, number>
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
  headerReaders: Object.fromEntries(
    readdirSync(join(repo, "src/events"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => [f, read(`src/events/${f}`)] as const)
      .filter(([, text]) => text.includes("sb_topic_region(")),
  ),
}
await ffi.loadNative()
const realTs: Ts = {
  TopicConst: layout.TopicConst,
  TopicLayout: layout.TopicLayout,
  SubField: layout.SubField,
  PubField: layout.PubField,
  BookField: layout.BookField,
  EntryState: layout.EntryState,
  RecState: layout.RecState,
  Encoding: layout.Encoding,
  FilterMode: layout.FilterMode,
  PubFlag: layout.PubFlag,
  CreateMode: ffi.CreateModeValue,
  layoutHash: ffi.topicNative.sb_topic_layout_hash(),
}

const sorted = (o: Record<string, number | undefined>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)))

/**
 * What PROTOCOL.md §8.2 says of each name of TopicLayout, SubField, PubField and BookField: the offset column of
 * the row whose field begins as given, in the table after the caption given, or the region map's lines.
 */
function protocolLayout(protocol: string) {
  const sec = section(protocol, /^### 8\.2 /, /^### /)
  const table = (caption: RegExp) => {
    const lines = sec.split("\n")
    const start = lines.findIndex((l) => caption.test(l))
    if (start < 0) return ""
    const end = lines.findIndex((l, i) => i > start + 2 && !l.startsWith("|"))
    return lines.slice(start, end < 0 ? undefined : end).join("\n")
  }
  const rows = (caption: RegExp, fields: Record<string, RegExp>) => {
    const t = table(caption)
    const at = (field: RegExp) => {
      const m = new RegExp(`^\\| (\\d+) \\| \\w+(?:\\[\\d+\\])? \\| ${field.source}`, "m").exec(t)
      return m ? Number(m[1]) : undefined
    }
    return Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, at(f)]))
  }
  // "4096    subscriber registry  64 × 256 bytes": where, how many, how long
  const region = (what: string) => {
    const m = new RegExp(`^(\\d+)\\s+${what}\\s+(\\d+) × (\\d+) bytes`, "m").exec(sec)
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : []
  }
  const entry = (caption: string) => {
    const m = new RegExp(`^${caption} \\((\\d+) bytes, at \`(\\d+) \\+ \\d+·i\``, "m").exec(sec)
    return m ? [Number(m[2]), Number(m[1])] : []
  }
  const [subsAt, subBytes] = entry("Subscriber entry")
  const [pubsAt, pubBytes] = entry("Publisher entry")
  const [booksAt, bookBytes] = entry("Books entry")
  const header = rows(/^Header:/, {
    OFF_ID: /topic id/,
    OFF_TAIL: /\*\*tail\*\*/,
    OFF_SLEEPERS: /\*\*sleepers\*\*/,
    OFF_RULES_VERSION: /rules version/,
    OFF_KEEPER_PID: /keeper pid/,
    OFF_KEEPER_START: /keeper start time/,
    OFF_ABANDONED: /abandoned/,
    OFF_FENCED: /\*\*fenced\*\*/,
    OFF_SEGMENTS: /\*\*segment index\*\*/,
    OFF_BRIDGED: /\*\*bridged\*\*/,
    OFF_BRIDGE_PID: /bridge pid/,
    OFF_BOOKS: /\*\*books\*\*/,
  })
  const [rulesAt, , ruleBytes] = region("late-binding rules")
  const [bindingsAt, bindings, bindingBytes] = region("binding table")
  return {
    TopicLayout: {
      ...header,
      BOOKS: Number(/\*\*books\*\*[^|]*?(\d+) entries of/.exec(sec)?.[1]) || undefined,
      BOOK_BYTES: booksAt === header.OFF_BOOKS ? bookBytes : undefined,
      OFF_SUBS: subsAt === region("subscriber registry")[0] ? subsAt : undefined,
      SUB_BYTES: subBytes === region("subscriber registry")[2] ? subBytes : undefined,
      OFF_PUBS: pubsAt === region("publisher registry")[0] ? pubsAt : undefined,
      PUB_BYTES: pubBytes === region("publisher registry")[2] ? pubBytes : undefined,
      OFF_RULES: rulesAt,
      RULE_BYTES: ruleBytes,
      OFF_BINDINGS: bindingsAt,
      BINDINGS: bindings,
      BINDING_BYTES: bindingBytes,
      OFF_DATA: Number(/DATA\s+= (\d+)/.exec(sec)?.[1]) || undefined,
    },
    SubField: rows(/^Subscriber entry/, {
      STATE: /state:/,
      PID: /pid/,
      START: /start time/,
      CURSOR: /\*\*cursor\*\*/,
      RECEIVED: /received/,
      LAGGED: /lagged/,
      PARKED: /parked/,
      NONCE: /wake nonce/,
      QUEUE: /queue/,
      FILTER_LEN: /filter length/,
      STUCK_AT: /stuck at/,
      FILTER: /filter \(/,
      ESTIMATES: /estimates/,
    }),
    PubField: rows(/^Publisher entry/, {
      STATE: /state:/,
      PID: /pid/,
      START: /start time/,
      PUBLISHED: /published/,
      FENCE: /\*\*fence\*\*/,
    }),
    BookField: rows(/^Books entry/, { BRIDGE: /sender bridge/, SUBJECT: /subject/, SEQ: /seq/, AT: /at:/ }),
  }
}

/** Header accesses by a bare number in a file that maps the topic's header: `getUint32(e + 4)`, `view[24]`. */
function bareOffsets(file: string, text: string): string[] {
  const code = stripC(text) // its comments go: TS comments are C's
  const found: string[] = []
  for (const m of code.matchAll(/\.(?:get|set)(?:Big)?U?[Ii]nt(?:8|16|32|64)\(([^,)]*)/g))
    if (/(?:^|[^\w.])\d+(?![\w.])/.test(m[1]!)) found.push(`${file}: ${m[0]}`)
  // err[0]: the error word the native open calls write, an Int32Array(1) of this process
  for (const m of code.matchAll(/\b(?!err\[)\w+\[\s*\d+\s*\]/g)) found.push(`${file}: ${m[0]}`)
  return found
}

/** Each header-mapping file's text through `edit` (a mutation that must apply to at least one). */
const mapFiles = (s: Sources, edit: (text: string) => string) =>
  Object.fromEntries(Object.entries(s.headerReaders).map(([f, t]) => [f, edit(t)]))

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
  "TopicLayout, SubField, PubField, BookField and the state enums equal topic.h": (s, ts) => [
    ...eq("TopicLayout", sorted(ts.TopicLayout), sorted(cEnum(s.header, "sb_topic_layout", "SB_TOPIC_"))),
    ...eq("SubField", sorted(ts.SubField), sorted(cEnum(s.header, "sb_topic_sub_field", "SB_SUB_"))),
    ...eq("PubField", sorted(ts.PubField), sorted(cEnum(s.header, "sb_topic_pub_field", "SB_PUBLISHER_"))),
    ...eq("BookField", sorted(ts.BookField), sorted(cEnum(s.header, "sb_topic_book_field", "SB_BOOK_"))),
    ...eq("EntryState", sorted(ts.EntryState), sorted(cEnum(s.header, "sb_topic_entry_state", "SB_ENTRY_"))),
    ...eq("RecState", sorted(ts.RecState), sorted(cEnum(s.header, "sb_topic_rec_state", "SB_REC_"))),
    ...eq("Encoding", sorted(ts.Encoding), sorted(cEnum(s.header, "sb_topic_encoding", "SB_ENC_"))),
    ...eq("FilterMode", sorted(ts.FilterMode), sorted(cEnum(s.header, "sb_topic_filter_mode", "SB_FILTER_"))),
    ...eq("PubFlag", sorted(ts.PubFlag), sorted(cEnum(s.header, "sb_topic_pub_flags", "SB_PUB_"))),
  ],
  "PROTOCOL.md §8 has the same magic, version and record states": (s, ts) => {
    const sec = section(s.protocol, /^## 8\. Topics/)
    return [
      ...eq("magic", Number(/magic `(0x[0-9A-Fa-f]+)`/.exec(sec)?.[1]), ts.TopicConst.MAGIC),
      ...eq("version", Number(/\| 4 \| u32 \| version `(\d+)`/.exec(sec)?.[1]), ts.TopicConst.VERSION),
      ...eq("record states", /state: 1 writing, 2 event, 3 padding, 4 aborted/.test(sec), true),
    ]
  },
  "every name of TopicLayout, SubField, PubField and BookField has its offset in PROTOCOL.md §8.2": (s, ts) => {
    const doc = protocolLayout(s.protocol)
    return (["TopicLayout", "SubField", "PubField", "BookField"] as const).flatMap((t) =>
      eq(`${t} (ffi.ts vs PROTOCOL.md)`, sorted(ts[t]), sorted(doc[t])),
    )
  },
  "the files that map the topic header read it through those names only": (s) => {
    const files = Object.keys(s.headerReaders)
    if (files.length === 0)
      return ["no file of src/events maps the topic header (sb_topic_region): the check reads none"]
    return files.flatMap((f) => bareOffsets(f, s.headerReaders[f]!))
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
      [
        "a books entry field moved in the header",
        (s) => ({ ...s, header: s.header.replace("SB_BOOK_SEQ = 8", "SB_BOOK_SEQ = 12") }),
      ],
      [
        "a books entry row moved in PROTOCOL",
        (s) => ({ ...s, protocol: s.protocol.replace("| 8 | u32 | seq: the last", "| 12 | u32 | seq: the last") }),
      ],
      [
        "the topic id row moved in PROTOCOL",
        (s) => ({ ...s, protocol: s.protocol.replace("| 16 | u64 | topic id", "| 24 | u64 | topic id") }),
      ],
      [
        "a publisher entry row moved in PROTOCOL",
        (s) => ({ ...s, protocol: s.protocol.replace("| 16 | u64 | published", "| 24 | u64 | published") }),
      ],
      [
        "the subscriber entry's size changed in PROTOCOL",
        (s) => ({ ...s, protocol: s.protocol.replace("Subscriber entry (256 bytes", "Subscriber entry (128 bytes") }),
      ],
      [
        "a header field read by its number",
        (s) => ({ ...s, headerReaders: mapFiles(s, (t) => t.replace("TopicLayout.OFF_ID", "16")) }),
      ],
      [
        "a header field read at a number past its entry",
        (s) => ({ ...s, headerReaders: mapFiles(s, (t) => t.replace("e + SubField.PID", "e + 4")) }),
      ],
      [
        "a header view indexed by a number",
        (s) => ({ ...s, headerReaders: mapFiles(s, (t) => `${t}\nconst pid = u32[48]\n`) }),
      ],
      ["the header mapped by no file the check finds", (s) => ({ ...s, headerReaders: {} })],
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
      ["a TS books entry field off", (ts) => ({ ...ts, BookField: { ...ts.BookField, SEQ: 12 } })],
      ["a TS offset PROTOCOL has no row for", (ts) => ({ ...ts, TopicLayout: { ...ts.TopicLayout, OFF_SPARE: 400 } })],
      ["a TS state off", (ts) => ({ ...ts, RecState: { ...ts.RecState, EVENT: 9 } })],
      ["another layout hash", (ts) => ({ ...ts, layoutHash: (ts.layoutHash + 1) >>> 0 })],
    ],
  },
)
