// What other rooms of slotbus use of this one and users do not (its internal face, along the edges
// test/architecture.test.ts declares): the page for the HTTP hub's GET /health/status, and what runs on this host
// read from the buses' recorder files and /proc, for `slotbus ls`, `top` and `requests` (src/cli).
export { PAGE_HEADERS, STATUS_PAGE_HTML } from "./page.ts"
export { familiesOf, metricsAnswer, metricsMaxAge, renderMetrics, sharedScrape } from "./metrics.ts"
export { discover } from "./host-discover.ts"
export type { BusView, HostView, Listener } from "./host-discover.ts"
export { ranMs, readRecorder } from "./host-recorder.ts"
export type { RecorderFile, RequestRecord } from "./host-recorder.ts"
