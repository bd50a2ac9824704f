// The NATS mapping of docs/PROTOCOL.md §10: subjects, headers, presence messages, and the connection.
import { hostname } from "node:os"
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node"

export const H = {
  id: "Slotbus-Id",
  kind: "Slotbus-Kind",
  head: "Slotbus-Head",
  timeout: "Slotbus-Timeout",
  status: "Slotbus-Status",
  flags: "Slotbus-Flags",
} as const

/** A bus name as one subject token: `.` written as `~` (§10.1). */
export const subjects = (bus: string) => {
  const root = `slotbus.${bus.replaceAll(".", "~")}`
  return {
    hub: `${root}.hub`,
    hb: `${root}.hb`,
    req: (worker: string) => `${root}.req.${worker}`,
    cancel: (worker: string) => `${root}.cancel.${worker}`,
  }
}

/** An id for a hub or a worker connection (§10.1): 1 to 64 of [A-Za-z0-9_-]. */
export const newId = () => crypto.randomUUID().replaceAll("-", "")
export const ID = /^[A-Za-z0-9_-]{1,64}$/
export const HOST = hostname()

export interface WorkerPresence {
  v: 1
  worker: string
  host: string
  pid: number
  slots: number
  state: "serving" | "draining" | "leaving"
}
export interface HubPresence {
  v: 1
  hub: string
  heartbeatMs: number
}

const decoder = new TextDecoder()
/** A presence message, or null when it is not one (anything may publish on these subjects). */
export function readPresence(data: Uint8Array): Record<string, unknown> | null {
  if (data.length > 4096) return null
  try {
    const v = JSON.parse(decoder.decode(data)) as unknown
    return typeof v === "object" && v !== null && (v as { v?: unknown }).v === 1 ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** A non-negative integer header, or -1. */
export function intHeader(h: MsgHdrs | undefined, name: string): number {
  const v = h?.get(name)
  return v && /^\d{1,10}$/.test(v) ? Number(v) : -1
}

/** The connection the `nats` option names: a connection of the caller's (left open), or one made here. */
export async function openConnection(option: unknown): Promise<{ nc: NatsConnection; owned: boolean }> {
  if (typeof option === "object" && option !== null && typeof (option as NatsConnection).publish === "function")
    return { nc: option as NatsConnection, owned: false }
  const { connect } = await import("@nats-io/transport-node")
  const opts = typeof option === "string" ? { servers: option.split(",").map((s) => s.trim()) } : option
  return { nc: await connect(opts as never), owned: true }
}
