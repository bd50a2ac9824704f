// What other rooms of slotbus use of this one and users do not (its internal face, along the edges
// test/architecture.test.ts declares): the page and how a report is read and drawn in a terminal, for the HTTP
// hub's GET /health/status and its `slotbus status`.
export { PAGE_HEADERS, STATUS_PAGE_HTML } from "./page.ts"
export { fetchCapped, redraw, renderReport } from "./cli.ts"
export { familiesOf, METRICS_HEADERS, renderMetrics } from "./metrics.ts"
