// What other rooms of slotbus use of this one and users do not (its internal face, along the edges
// test/architecture.test.ts declares): how sections are drawn, for the HTTP hub's own page and `slotbus status`.
export { pageHeaders, SECTIONS_SCRIPT, SECTIONS_STYLE, sha256 } from "./page.ts"
export { redraw, renderSections } from "./cli.ts"
