// The toolkit: what several rooms share and that knows nothing of slots - option checks, timers, backoff, an
// emitter, process supervision, token files, create modes, status sections, the per-host election (host/host-seat.ts).
// Rooms import it through this file; README.md maps its folders and the order they import each other in.
export { closeAtExit, drainBeforeStop } from "./basics/at-exit.ts"
export { Backoff } from "./basics/backoff.ts"
export { withCauses } from "./basics/causes.ts"
export type { BackoffOptions } from "./basics/backoff.ts"
export { Emitter } from "./basics/emitter.ts"
export { checkCreate, createRefusal, settingMismatch } from "./checks/lifecycle.ts"
export type { CreateMode } from "./checks/lifecycle.ts"
export { systemError } from "./checks/system-error.ts"
export { checkOptions, checkRemote, didYouMean, madeBy, optionNames, REMOTE_EXAMPLE } from "./checks/option-check.ts"
export type { OptionProblem, OptionRules } from "./checks/option-check.ts"
export { STATUS, ago, readSection, section, sectionOf } from "./telemetry/status.ts"
export type { StatusPart, StatusSection, StatusSource, StatusTable, StatusValue } from "./telemetry/status.ts"
export { Supervisor } from "./supervision/supervisor.ts"
export { INSTANCES, ReplaceError, SHARED_OPTIONS, SupervisorError } from "./supervision/options.ts"
export { RESTART_MOVED } from "./supervision/restart-policy.ts"
export type { RestartOptions } from "./supervision/restart-policy.ts"
export { splitCommand } from "./supervision/command.ts"
export { OnDemandReaper, Reaper } from "./supervision/reaper.ts"
export { procStat, procState, stoppedProcess, within } from "./supervision/process-wait.ts"
export { euid, HostSeat, seatHeld } from "./host/host-seat.ts"
export { claimSocketPath } from "./host/socket-path.ts"
export type { SeatEvents } from "./host/host-seat.ts"
export { printable, printableJson } from "./checks/escape.ts"
export { preview } from "./checks/preview.ts"
export { withPoolName, WorkerLogsError } from "./supervision/worker-logs.ts"
export { lastWordsToLog, WORKER_LOG_ENV } from "./supervision/last-words.ts"
export type { WorkerLogsConfig, WorkerLogsOption } from "./supervision/worker-logs.ts"
export type {
  ExitInfo,
  SupervisedInstance,
  SupervisorEvents,
  SupervisorHooks,
  SupervisorOptions,
  SupervisorState,
} from "./supervision/options.ts"
export { longTimeout, MAX_TIMER_MS, sleep } from "./basics/timers.ts"
export type { LongTimer } from "./basics/timers.ts"
export {
  defaultTokenPath,
  newToken,
  readCheckedToken,
  removeTokenFile,
  sameToken,
  writeTokenFile,
} from "./host/token-file.ts"
export {
  checkName,
  checkNumber,
  checkPort,
  isBadPort,
  isNodeResponse,
  isThenable,
  NAME_CHARS,
  nameProblem,
} from "./checks/value-check.ts"
export type { NameRule, NumberRule, ValueProblem } from "./checks/value-check.ts"
export {
  activeContext,
  otelApi,
  otelTracing,
  remoteParent,
  slotbusTracer,
  SPAN_ERROR,
  spanContext,
} from "./telemetry/otel.ts"
export {
  checkTraceOptions,
  formatTraceparent,
  parseTraceparent,
  parseTracestate,
  receivedContext,
  TRACESTATE_MAX,
} from "./telemetry/trace-context.ts"
export type { TraceContext, Traceparent } from "./telemetry/trace-context.ts"
export type {
  Otel,
  OtelAttributes,
  OtelContext,
  OtelLink,
  OtelSpan,
  OtelSpanContext,
  OtelTraceState,
  OtelTracer,
} from "./telemetry/otel.ts"
export { BoundedLabels, DURATION_BUCKETS, Histogram, quantileRank } from "./telemetry/histogram.ts"
export type { HistogramSnapshot } from "./telemetry/histogram.ts"
export { family, hasMetrics, METRICS } from "./telemetry/metrics.ts"
export type { MetricFamily, MetricLabels, MetricSample, MetricsSource, MetricType } from "./telemetry/metrics.ts"
export { LAG_HELP, processFamilies, readProcess, selfFamilies } from "./telemetry/process-metrics.ts"
export type { ProcessFigures } from "./telemetry/process-metrics.ts"
export { loadOtelApi, METRICS_TAP, reportToMeter } from "./telemetry/otel-metrics.ts"
export type { MetricsTapSource, OtelMeter, OtelObservable, OtelReport } from "./telemetry/otel-metrics.ts"
export { exchangeOf, HTTP_SERVER_DURATION, httpRoute, httpServer, openExchange } from "./telemetry/http-server.ts"
export type { Exchange } from "./telemetry/http-server.ts"
