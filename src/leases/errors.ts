// Errors of lease contests. All extend SlotBusError, so one `instanceof` catches any slotbus failure.
import { ClosedError, FullError, SlotBusError } from "../errors.ts"

/** The lease is no longer held (expired, taken over after expiry, released, or reset): claim it again. */
export class LeaseLostError extends SlotBusError {}

/** A subject label or owner label is longer than the contest allows; `limit` names the limit in bytes. */
export class ContestFrameTooLargeError extends SlotBusError {
  constructor(
    message: string,
    readonly field: "label" | "owner",
    readonly limit: number,
    readonly size: number,
  ) {
    super(message)
  }
}

/** The subject is malformed (kind not a u32 integer, label not a string or with a lone surrogate). */
export class InvalidSubjectError extends SlotBusError {}

/** The contest's subject table is full: open it (after every member left) with a larger `capacity`. */
export class ContestFullError extends FullError {}

/** The contest was closed in this process; open it again. */
export class ContestClosedError extends ClosedError {}

/**
 * Why a contest could not be opened or joined (`ContestOpenError.reason`):
 * - `"invalid-name"`: the name is not 1-64 of [A-Za-z0-9._-]
 * - `"invalid-capacity"`: `capacity` is not a power of two from 64 to 65536
 * - `"members-stopped"`: every member is stopped (SIGSTOP, a debugger), so none can hand the table over; their
 *   pids are in `pids` (a ContestMembersStoppedError)
 * - `"no-answer"`: no member handed the table over within `joinTimeoutMs`
 * - `"member-limit"`: the contest already has 256 members
 * - `"mode"`: the name is open the other way (local or cluster-wide) on this host (a ContestModeError)
 * - `"system"`: the system refused (the message gives the errno)
 */
export type ContestOpenReason =
  | "invalid-name"
  | "invalid-capacity"
  | "members-stopped"
  | "no-answer"
  | "member-limit"
  | "mode"
  | "system"

/** The contest could not be opened or joined: `reason` says why, as data. */
export class ContestOpenError extends SlotBusError {
  constructor(
    message: string,
    readonly reason: ContestOpenReason,
  ) {
    super(message)
  }
}

/** Every member of the contest is stopped (SIGSTOP, a debugger), so none can hand the table over: `pids` are theirs. */
export class ContestMembersStoppedError extends ContestOpenError {
  constructor(
    message: string,
    readonly pids: number[],
  ) {
    super(message, "members-stopped")
  }
}

/**
 * A contest name is open both as a local contest and as a cluster contest (a `remote` option) on this host: their
 * tokens cannot be compared and their claims do not exclude each other (docs/PROTOCOL.md §12.5). Use one or the other.
 */
export class ContestModeError extends ContestOpenError {
  constructor(message: string) {
    super(message, "mode")
  }
}

/** A cluster contest could not reach its JetStream bucket (no server, no quorum, no JetStream): `cause` says why. */
export class ContestUnavailableError extends SlotBusError {}
