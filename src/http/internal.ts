// What other rooms of slotbus use of this one and users do not (its internal face): the hub's GET /health drawn
// as a status section, for `slotbus status <hub-url>` (src/cli).
export { hubReport } from "./hub/section.ts"
