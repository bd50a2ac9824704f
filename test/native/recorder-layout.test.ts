// The flight recorder's layout check: the offsets and constants of csrc/recorder.h, src/native/recorder-layout.ts
// (what every TS reader uses) and docs/PROTOCOL.md §16 must agree exactly; the second half mutates each side to
// prove the check notices.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as layout from "../../src/native/recorder-layout.ts"
import { camel, cDefine, cEnum, eq, layoutTests, section } from "../support/c-text.ts"

const repo = join(import.meta.dir, "..", "..")
const read = (p: string) => readFileSync(join(repo, p), "utf8")

interface Sources {
  header: string // csrc/recorder.h
  protocol: string // docs/PROTOCOL.md
}
type Ts = {
  RecConst: Record<keyof typeof layout.RecConst, number>
  RecHeader: Record<string, number>
  RecWorker: Record<string, number>
  RecField: Record<string, number> & { what: number }
  RecPhase: Record<string, number>
  RecOutcome: Record<string, number>
}

const real: Sources = { header: read("csrc/recorder.h"), protocol: read("docs/PROTOCOL.md") }
const realTs: Ts = {
  RecConst: layout.RecConst,
  RecHeader: layout.RecHeader,
  RecWorker: layout.RecWorker,
  RecField: layout.RecField,
  RecPhase: layout.RecPhase,
  RecOutcome: layout.RecOutcome,
}

/** A C enum of byte offsets with its keys in camelCase: SBR_H_RECORD_COUNT → recordCount. */
function offsets(h: string, name: string, prefix: string): Record<string, number> {
  const e = cEnum(h, name, prefix)
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [camel(k.toLowerCase()), v]))
}

/** The rows of §16.2's n-th `| off | type | field |` table as { camelName: offset }, reserved rows left out. */
function docTable(md: string, n: number): Record<string, number> {
  const s = section(md, /^### 16\.2 /, /^### /)
  const tables = s.split(/\n\| off \| type \| field \|\n\|[-:| ]+\|\n/).slice(1)
  const table = tables[n]
  if (table === undefined) throw new Error(`§16.2 has no table ${n}`)
  const out: Record<string, number> = {}
  for (const line of table.split("\n")) {
    const m = /^\| (\d+) \| [^|]+ \| \**([a-z_]+)/.exec(line)
    if (!m) {
      if (!line.startsWith("|")) break
      continue
    }
    if (m[2] !== "reserved") out[camel(m[2]!)] = Number(m[1])
  }
  return out
}

const without = (o: Record<string, number>, ...keys: string[]) =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)))

/** A code list of the doc, "1 in flight, 2 streaming, 3 done", as { IN_FLIGHT: 1, … }. */
function docCodes(md: string, field: string): Record<string, number> {
  const s = section(md, /^### 16\.2 /, /^### /)
  const row = new RegExp(`\\| ${field}: ([^|]+)\\|`).exec(s)
  if (!row) throw new Error(`§16.2 has no ${field} row`)
  const out: Record<string, number> = {}
  for (const m of row[1]!.matchAll(/(\d+) ([a-z ]+?)(?: \([^)]*\))?(?:,|$| \|)/g))
    out[m[2]!.trim().replace(/ yet$/, "").toUpperCase().replaceAll(" ", "_")] = Number(m[1])
  return out
}

const checks: Record<string, (s: Sources, ts: Ts) => string[]> = {
  "the header's offsets agree in recorder.h, recorder-layout.ts and §16.2": (s, ts) => [
    ...eq("RecHeader vs enum sbr_header_off", ts.RecHeader, offsets(s.header, "sbr_header_off", "SBR_H_")),
    ...eq("RecHeader vs §16.2's header table", without(ts.RecHeader, "workerTable"), docTable(s.protocol, 0)),
  ],
  "a worker entry's offsets agree": (s, ts) => [
    ...eq("RecWorker vs enum sbr_worker_off", ts.RecWorker, offsets(s.header, "sbr_worker_off", "SBR_W_")),
    ...eq("RecWorker vs §16.2's worker table", without(ts.RecWorker, "bytes"), docTable(s.protocol, 1)),
  ],
  "a record's offsets agree": (s, ts) => [
    ...eq("RecField vs enum sbr_record_off", ts.RecField, offsets(s.header, "sbr_record_off", "SBR_R_")),
    ...eq("RecField vs §16.2's record table", ts.RecField, docTable(s.protocol, 2)),
  ],
  "the constants agree": (s, ts) => {
    const doc = section(s.protocol, /^### 16\.2 /, /^### /)
    const docNum = (re: RegExp) => Number(re.exec(doc)?.[1])
    return [
      ...eq("MAGIC", ts.RecConst.MAGIC, cDefine(s.header, "SBR_MAGIC")),
      ...eq("MAGIC vs §16.2", ts.RecConst.MAGIC, docNum(/\| magic `(0x[0-9A-Fa-f]+)`/)),
      ...eq("VERSION", ts.RecConst.VERSION, cDefine(s.header, "SBR_VERSION")),
      ...eq("VERSION vs §16.2", ts.RecConst.VERSION, docNum(/\| version `(\d+)`/)),
      ...eq("HEADER_BYTES", ts.RecConst.HEADER_BYTES, cDefine(s.header, "SBR_HEADER_BYTES")),
      ...eq("HEADER_BYTES vs §16.2", ts.RecConst.HEADER_BYTES, docNum(/\| header_bytes `(\d+)`/)),
      ...eq("RECORD_BYTES", ts.RecConst.RECORD_BYTES, cDefine(s.header, "SBR_RECORD_BYTES")),
      ...eq("RECORD_BYTES vs §16.2", ts.RecConst.RECORD_BYTES, docNum(/\| record_bytes `(\d+)`/)),
      ...eq("WORKER_ENTRIES", ts.RecConst.WORKER_ENTRIES, cDefine(s.header, "SBR_WORKER_ENTRIES")),
      ...eq("WORKER_ENTRIES vs §16.2", ts.RecConst.WORKER_ENTRIES, docNum(/\| worker_entries `(\d+)`/)),
      ...eq("MAX_RECORDS", ts.RecConst.MAX_RECORDS, cDefine(s.header, "SBR_MAX_RECORDS")),
      ...eq("MAX_RECORDS vs §16.2", ts.RecConst.MAX_RECORDS, docNum(/\| record_count \(1 … (\d+)\)/)),
      ...eq("WHAT_BYTES", ts.RecConst.WHAT_BYTES, cDefine(s.header, "SBR_WHAT_BYTES")),
      ...eq("NO_SLOT", ts.RecConst.NO_SLOT, cDefine(s.header, "SBR_NO_SLOT")),
      ...eq("NO_SLOT vs §16.2", ts.RecConst.NO_SLOT, docNum(/\| slot; `(0x[0-9A-Fa-f]+)` for a request/)),
      ...eq(
        "WHAT_BYTES vs the record's last field",
        ts.RecConst.WHAT_BYTES,
        ts.RecConst.RECORD_BYTES - ts.RecField.what,
      ),
    ]
  },
  "the phase and outcome codes agree": (s, ts) => [
    ...eq("RecPhase vs enum sbr_phase", ts.RecPhase, cEnum(s.header, "sbr_phase", "SBR_")),
    ...eq("RecPhase vs §16.2", ts.RecPhase, docCodes(s.protocol, "phase")),
    ...eq("RecOutcome vs enum sbr_outcome", ts.RecOutcome, cEnum(s.header, "sbr_outcome", "SBR_")),
    ...eq("RecOutcome vs §16.2", ts.RecOutcome, docCodes(s.protocol, "outcome")),
  ],
}

layoutTests(
  {
    agree: "the flight recorder's layout agrees in csrc/recorder.h, recorder-layout.ts and PROTOCOL.md §16",
    fails: "the flight recorder's layout check fails on any mismatch",
  },
  checks,
  real,
  realTs,
  {
    text: [
      [
        "a header offset moved in recorder.h",
        (s) => ({ ...s, header: s.header.replace("SBR_H_QUEUED = 136", "SBR_H_QUEUED = 140") }),
      ],
      [
        "a record offset moved in recorder.h",
        (s) => ({ ...s, header: s.header.replace("SBR_R_DONE_NS = 64", "SBR_R_DONE_NS = 72") }),
      ],
      [
        "a worker offset moved in recorder.h",
        (s) => ({ ...s, header: s.header.replace("SBR_W_REQUESTS = 8", "SBR_W_REQUESTS = 12") }),
      ],
      [
        "a record offset moved in PROTOCOL.md",
        (s) => ({ ...s, protocol: s.protocol.replace("| 56 | u64 | first_byte_ns", "| 60 | u64 | first_byte_ns") }),
      ],
      [
        "a header field renamed in PROTOCOL.md",
        (s) => ({ ...s, protocol: s.protocol.replace("| 136 | u32 | queued:", "| 136 | u32 | waiting:") }),
      ],
      [
        "the record size changed in PROTOCOL.md",
        (s) => ({ ...s, protocol: s.protocol.replace("record_bytes `192`", "record_bytes `256`") }),
      ],
      ["the magic changed in recorder.h", (s) => ({ ...s, header: s.header.replace("0x53425243u", "0x53425244u") })],
      [
        "an outcome renumbered in recorder.h",
        (s) => ({ ...s, header: s.header.replace("SBR_TIMEOUT = 4", "SBR_TIMEOUT = 6") }),
      ],
      [
        "an outcome renumbered in PROTOCOL.md",
        (s) => ({ ...s, protocol: s.protocol.replace("4 timeout, 5 worker gone", "4 worker gone, 5 timeout") }),
      ],
    ],
    ts: [
      ["RecField.traceId off by 8", (ts) => ({ ...ts, RecField: { ...ts.RecField, traceId: 88 } })],
      ["RecHeader.written off by 4", (ts) => ({ ...ts, RecHeader: { ...ts.RecHeader, written: 60 } })],
      ["RecWorker.attachedNs off by 8", (ts) => ({ ...ts, RecWorker: { ...ts.RecWorker, attachedNs: 24 } })],
      ["RecConst.RECORD_BYTES changed", (ts) => ({ ...ts, RecConst: { ...ts.RecConst, RECORD_BYTES: 128 } })],
      ["RecPhase.DONE changed", (ts) => ({ ...ts, RecPhase: { ...ts.RecPhase, DONE: 4 } })],
      ["RecOutcome.WORKER_GONE changed", (ts) => ({ ...ts, RecOutcome: { ...ts.RecOutcome, WORKER_GONE: 6 } })],
    ],
  },
)
