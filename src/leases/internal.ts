// The leases room's face for the transports that implement its port (src/nats): the lease table's interfaces.
// Users import slotbus/leases instead.
export { LEASE_PORT } from "./table.ts"
export type {
  HeldValue,
  KvClaim,
  KvClaimOutcome,
  KvHolder,
  LeaseRemote,
  LeaseTable,
  LeaseTableOptions,
} from "./table.ts"
