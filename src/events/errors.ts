// The topic errors (they live in the core, so the HTTP hub and slotbus/events share them).
import { ClosedError, FullError, SlotBusError } from "../errors.ts"

/** The topic was closed; open it again. */
export class TopicClosedError extends ClosedError {}

/** Every subscriber (64), publisher (32) or rule (8) entry of the topic is taken: close some, or use another topic. */
export class TopicFullError extends FullError {}

/**
 * A durable topic's JetStream stream (docs/PROTOCOL.md §11.6) cannot be used: the server has no JetStream, a stream
 * of that name belongs to something else, or reading it failed (`cause` says why).
 */
export class TopicStreamError extends SlotBusError {}
