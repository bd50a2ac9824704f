// A piscina thread of `slotbus bench node` (front.ts): the report of id ≥ 0, the small answer of −1 − id.
import { renderReport, small } from "./render.ts"

export default (id: number) => (id >= 0 ? renderReport(id) : small(-1 - id))
