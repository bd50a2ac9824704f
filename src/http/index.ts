export { createHub, Hub } from "./hub/server.ts"
export type { HubOptions } from "./hub/options.ts"
export type { HubCounters } from "./hub/counters.ts"
export type { HubHealth, HubWorkerInfo } from "./hub/health.ts"
export { hubWorker, HubApp } from "./worker/app.ts"
export type { HubWorkerOptions } from "./worker/app.ts"
export { HubRequest } from "./worker/request.ts"
export type { HeadersLike, HubHandler, HubReply, ReplyBody } from "./worker/request.ts"
export { SseConnection } from "./worker/sse.ts"
export type { SseHandler } from "./worker/sse.ts"
export type { PushTo } from "./worker/client.ts"
export type { HubAppClosed } from "./worker/join.ts"
export { HubAuthError, HubEventsError, HubRequestError, RouteConflictError, RouteError } from "./errors.ts"
export type { Params, RouteParams } from "./routes.ts"

// hubWorker(…, { nats }) and createHub({ nats }) load the NATS transport, as the package entry does for SlotBus.
import { setRemoteLoader } from "../core/index.ts"
setRemoteLoader(async () => (await import("../nats/index.ts")).transport)
