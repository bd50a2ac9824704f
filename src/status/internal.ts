// What other rooms of slotbus use of this one and users do not (its internal face, along the edges
// test/architecture.test.ts declares): how sections are drawn and a status
// answer is read, for the HTTP hub's own page and its `slotbus status`.
export { pageHeaders, SECTIONS_SCRIPT, SECTIONS_STYLE, sha256 } from "./page.ts"
export { fetchCapped, numberOf, redraw, renderSections } from "./cli.ts"
