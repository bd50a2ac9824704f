// slotbus/stdio: supervised pools of NDJSON JSON-RPC workers (MCP servers, language servers, scripts).
export { StdioBus } from "./bus.ts"
export type {
  BusClient,
  BusMessage,
  BusState,
  InstanceStats,
  JsonRpcId,
  JsonRpcMessage,
  LogLevel,
  PoolStats,
  RawJSON,
  StdioBusEvents,
  StdioBusStats,
  StdioReloadOptions,
  StdioRequestOptions,
  StdioStopOptions,
} from "./types.ts"
export { DEFAULT_LIMITS, loadConfig } from "./config.ts"
export type {
  CancelProtocol,
  InitializeReplay,
  LimitsConfig,
  ReadyCheck,
  PoolConfig,
  StdioBusConfig,
  StdioBusConfigInput,
} from "./config.ts"
export {
  BackpressureError,
  BusErrorCode,
  InvalidStateError,
  JsonRpcError,
  ReloadError,
  SpawnError,
  ListenError,
  StdioConfigError,
} from "./errors.ts"
export { StdioListener, formatAddress, parseAddress } from "./listener.ts"
export type { ClientHost, ListenAddress, ListenOptions } from "./listener.ts"
export { McpHttpHandler } from "./mcp-http.ts"
export type { McpHttpHost, McpHttpOptions } from "./mcp-http-options.ts"
export { McpHttpListener, parseHttpAddress } from "./mcp-http-listener.ts"
export type { HttpAddress, McpHttpListenOptions } from "./mcp-http-listener.ts"
export { MCP_PROTOCOL_VERSIONS } from "./mcp-http-checks.ts"
export { AUTH_METHOD, STDIO_TOKEN_ENV, STDIO_TOKEN_FILE_ENV, defaultStdioTokenFile, readTokenFile } from "./token.ts"
export { BusClosedError, ClosedError, PoolFailedError, TimeoutError, WorkerGoneError } from "../core/index.ts"
export { ReplaceError } from "../kit/index.ts"
