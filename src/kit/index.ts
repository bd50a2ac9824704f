// The toolkit: what several rooms share and that knows nothing of slots - option checks, timers, backoff, an
// emitter, process supervision, token files, create modes, status sections, the per-host election (host-seat.ts).
// Rooms import it through this file.
export { Backoff } from "./backoff.ts"
export type { BackoffOptions } from "./backoff.ts"
export { Emitter } from "./emitter.ts"
export { checkCreate, createRefusal, settingMismatch } from "./lifecycle.ts"
export type { CreateMode } from "./lifecycle.ts"
export { systemError } from "./system-error.ts"
export { checkOptions, checkRemote, didYouMean, madeBy, optionNames, REMOTE_EXAMPLE } from "./option-check.ts"
export type { OptionProblem, OptionRules } from "./option-check.ts"
export { STATUS, ago, readSection, section } from "./status.ts"
export type { StatusPart, StatusSection, StatusSource, StatusTable, StatusValue } from "./status.ts"
export { ReplaceError, SHARED_OPTIONS, Supervisor, SupervisorError } from "./supervisor.ts"
export { splitCommand } from "./command.ts"
export { euid, HostSeat, seatHeld } from "./host-seat.ts"
export type { SeatEvents } from "./host-seat.ts"
export { printable, printableJson } from "./escape.ts"
export { withPoolName, WorkerLogsError } from "./worker-logs.ts"
export { lastWordsToLog, WORKER_LOG_ENV } from "./last-words.ts"
export type { WorkerLogsConfig, WorkerLogsOption } from "./worker-logs.ts"
export type {
  ExitInfo,
  SupervisedInstance,
  SupervisorEvents,
  SupervisorOptions,
  SupervisorState,
} from "./supervisor.ts"
export { longTimeout, MAX_TIMER_MS, sleep } from "./timers.ts"
export type { LongTimer } from "./timers.ts"
export {
  defaultTokenPath,
  newToken,
  readCheckedToken,
  removeTokenFile,
  sameToken,
  writeTokenFile,
} from "./token-file.ts"
export { checkName, checkNumber, isThenable, NAME_CHARS, nameProblem } from "./value-check.ts"
export type { NameRule, NumberRule, ValueProblem } from "./value-check.ts"
export { activeContext, otelApi, otelTracing, remoteParent, slotbusTracer, SPAN_ERROR, spanContext } from "./otel.ts"
export {
  checkTraceOptions,
  formatTraceparent,
  parseTraceparent,
  parseTracestate,
  receivedContext,
  TRACESTATE_MAX,
} from "./trace-context.ts"
export type { TraceContext, Traceparent } from "./trace-context.ts"
export type {
  Otel,
  OtelAttributes,
  OtelContext,
  OtelLink,
  OtelSpan,
  OtelSpanContext,
  OtelTraceState,
  OtelTracer,
} from "./otel.ts"
export { BoundedLabels, DURATION_BUCKETS, Histogram, quantileRank } from "./histogram.ts"
export type { HistogramSnapshot } from "./histogram.ts"
export { family, hasMetrics, METRICS } from "./metrics.ts"
export type { MetricFamily, MetricLabels, MetricSample, MetricsSource, MetricType } from "./metrics.ts"
export { LAG_HELP, processFamilies, readProcess, selfFamilies } from "./process-metrics.ts"
export type { ProcessFigures } from "./process-metrics.ts"
export { loadOtelApi, METRICS_TAP, reportToMeter } from "./otel-metrics.ts"
export type { MetricsTapSource, OtelMeter, OtelObservable, OtelReport } from "./otel-metrics.ts"
export { exchangeOf, HTTP_SERVER_DURATION, httpRoute, httpServer, openExchange } from "./http-server.ts"
export type { Exchange } from "./http-server.ts"
