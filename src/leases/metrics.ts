// A contest's metric families for GET /metrics (serveStatus): its counts from shared memory (every member's, since
// it was made) and what it holds now. Labelled contest="<name>".
import { family, type MetricFamily } from "../kit/index.ts"

const COUNTS = [
  ["claims", "successful claims, takeovers included"],
  ["takeovers", "claims won because the previous holder's process had died (or left without releasing)"],
  ["expiries", "claims won because the previous claim had expired"],
  ["releases", "claims released by their holder"],
  ["yields", "tryClaim calls that yielded to a holder"],
] as const

/** What it reads of a contest's stats() (ContestStats, by shape: contest.ts imports this file). */
type Counts = Record<(typeof COUNTS)[number][0] | "members" | "subjects" | "capacity", number>

export function contestFamilies(name: string, st: Counts): MetricFamily[] {
  const contest = { contest: name }
  const out: MetricFamily[] = COUNTS.map(([key, help]) => {
    const f = family(`slotbus_contest_${key}_total`, "counter", help)
    f.add(contest, st[key])
    return f
  })
  const members = family("slotbus_contest_members", "gauge", "processes with the contest open")
  members.add(contest, st.members)
  const held = family("slotbus_contest_subjects_held", "gauge", "subjects claimed now")
  held.add(contest, st.subjects)
  const capacity = family("slotbus_contest_capacity_subjects", "gauge", "subjects the contest can hold at once")
  capacity.add(contest, st.capacity)
  return [...out, members, held, capacity]
}
