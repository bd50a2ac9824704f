// Errors of the HTTP hub and its worker SDK. All extend SlotBusError, so one `instanceof` catches any slotbus failure.
import { SlotBusError } from "../core/index.ts"

/** A route pattern or method is malformed, or lies under a path the hub keeps for itself. */
export class RouteError extends SlotBusError {}

/** The hub refused a registration because another worker name already serves one of its routes. */
export class RouteConflictError extends SlotBusError {
  constructor(
    message: string,
    /** Each contested route ("GET /items/:id") and the worker name that holds it. */
    readonly conflicts: { route: string; owner: string }[] = [],
  ) {
    super(message)
  }
}

/** The hub refused the worker's token (401) or its address (403), or no token could be found. */
export class HubAuthError extends SlotBusError {}

/** The hub answered a registration, emit or push with an error the SDK cannot retry its way out of. */
export class HubRequestError extends SlotBusError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message)
  }
}

/** The hub could not open its events topic (another hub or program holds the name): pass another `eventsTopic`. */
export class HubEventsError extends SlotBusError {}
