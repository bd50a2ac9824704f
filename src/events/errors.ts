import { SlotBusError } from "../core/index.ts"

/** The topic was closed; open it again. */
export class TopicClosedError extends SlotBusError {}

/** Every subscriber (64) or rule (8) entry of the topic is taken: close some, or use another topic. */
export class TopicFullError extends SlotBusError {}
