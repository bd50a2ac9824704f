// A piscina thread of `slotbus bench node` (front.ts): the report of id ≥ 0; for a path (/small/<id>, /page/<id>),
// its answer: the small object or the cached page's text.
import { page, route, small } from "../lib/answers.ts"
import { renderReport } from "./render.ts"

export default (task: number | string) => {
  if (typeof task === "number") return renderReport(task)
  const r = route(task)
  return r && (r.answer === "small" ? small(r.id) : page(r.id))
}
