// The ways `slotbus bench node` serves its report route (front.ts has what each is).
export const VARIANTS = ["inline", "piscina", "cluster", "slotbus", "slotbus-reply", "slotbus-rpc"] as const
