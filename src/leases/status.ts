// What serveStatus shows of a contest: its counts and the claims held now on this host.
import { ago, section, type StatusSection } from "../kit/index.ts"

/** What it reads of a contest (its stats() and holders(), by shape: contest.ts imports this file). */
type Counts = Record<
  "members" | "subjects" | "capacity" | "claims" | "releases" | "expiries" | "takeovers" | "yields",
  number
>
type Held = {
  subject: { kind: number; label: string }
  owner: string
  pid: number
  token: bigint
  expiresAt: number
}

export function contestSection(name: string, st: Counts, holders: (nowMs: number) => Held[]): StatusSection {
  const s = section("contest", name)
  s.facts.push(
    ["members", st.members],
    ["subjects held / capacity", `${st.subjects} / ${st.capacity}`],
    ["claims / releases", `${st.claims} / ${st.releases}`],
    ["expiries / takeovers / yields", `${st.expiries} / ${st.takeovers} / ${st.yields}`],
  )
  const now = Date.now()
  s.tables.push({
    title: "claims held",
    columns: ["kind", "label", "owner", "pid", "token", "expires in"],
    rows: holders(now).map((h) => [
      h.subject.kind,
      h.subject.label,
      h.owner,
      h.pid,
      String(h.token),
      h.expiresAt === Infinity ? "never" : ago(h.expiresAt - now),
    ]),
  })
  return s
}
