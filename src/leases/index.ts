// slotbus/leases: claim/yield contests between local processes, with TTLs, fencing tokens and death detection.
export { Contest } from "./contest.ts"
export { Lease } from "./lease.ts"
export { ClusterContest, ClusterLease } from "./cluster.ts"
export type {
  ClusterClaimOptions,
  ClusterClaimResult,
  ClusterContestOptions,
  ClusterHolder,
  ClusterWaitOptions,
} from "./cluster.ts"
export type { ClaimedFrom } from "./lease.ts"
export type {
  ClaimOptions,
  ClaimResult,
  ContestOptions,
  ContestStats,
  Holder,
  WaitOptions,
} from "./contest-types.ts"
export type { Subject } from "./subject.ts"
export {
  ContestClosedError,
  ContestFrameTooLargeError,
  ContestFullError,
  ContestMembersStoppedError,
  ContestModeError,
  ContestOpenError,
  ContestUnavailableError,
  InvalidSubjectError,
  LeaseLostError,
} from "./errors.ts"
export type { ContestOpenReason } from "./errors.ts"
export type { CreateMode } from "../kit/index.ts"
export {
  AlreadyExistsError,
  ClosedError,
  FullError,
  NotFoundError,
  PeerRefusedError,
  ProtocolError,
  SettingsMismatchError,
  SlotBusError,
  TimeoutError,
} from "../errors.ts"
