// What other rooms of slotbus use of this one and users do not (its internal face): how `slotbus stdio` (src/cli)
// reads its own stdin as a client, lines held back while the bus has no room for them.
export { Inbound } from "./inbound.ts"
export { LineSplitter } from "./lines.ts"
