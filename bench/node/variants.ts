// The ways `slotbus bench node` serves its routes (front.ts has what each is).
export const VARIANTS = [
  "inline",
  "piscina",
  "cluster",
  "slotbus",
  "slotbus-reply",
  "slotbus-rpc",
  "slotbus-call",
] as const
