// slotbus/leases: claim/yield contests between local processes, with TTLs, fencing tokens and death detection.
export { Contest, Lease } from "./contest.ts"
export { ClusterContest, ClusterLease } from "./cluster.ts"
export type {
  ClusterClaimOptions,
  ClusterClaimResult,
  ClusterContestOptions,
  ClusterHolder,
  ClusterWaitOptions,
} from "./cluster.ts"
export type {
  ClaimedFrom,
  ClaimOptions,
  ClaimResult,
  ContestOptions,
  ContestStats,
  Holder,
  Subject,
  WaitOptions,
} from "./contest.ts"
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
export type { CreateMode } from "../kit/index.ts"
export {
  AlreadyExistsError,
  NotFoundError,
  PeerRefusedError,
  ProtocolError,
  SettingsMismatchError,
  SlotBusError,
  TimeoutError,
} from "../errors.ts"
