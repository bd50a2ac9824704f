// slotbus/status: a live view of a process's buses, topics, contests and stdio buses, in a browser or a terminal.
export { serveStatus } from "./server.ts"
export type { StatusInput, StatusReport, StatusServer, StatusServerOptions } from "./server.ts"
export { STATUS, section } from "../kit/index.ts"
export type { StatusPart, StatusSection, StatusSource, StatusTable, StatusValue } from "../kit/index.ts"
export { METRICS } from "../kit/index.ts"
export type { MetricFamily, MetricSample, MetricsSource } from "../kit/index.ts"
