// systemd's readiness protocol (sd_notify(3)): a service of Type=notify tells its manager "READY=1" (and
// "RELOADING=1", "STOPPING=1", "STATUS=…") in one datagram to the unix socket $NOTIFY_SOCKET. Sent by libslotbus
// (sb_notify): Bun has no unix datagram socket. The process that sends is the one systemd credits, so under
// NotifyAccess=main the front (the unit's main process) calls it itself.
import { NotifyQueueFullError, SlotBusError } from "../../errors.ts"
import { Backoff, sleep } from "../../kit/index.ts"
import { Errno, loadNative, native } from "../../native/ffi.ts"

const STATE_MAX = 4096
/** How long notifySystemd tries again while the manager's queue is full (sb_notify never blocks). */
export const NOTIFY_RETRY_MS = 1000

/**
 * Tells the service manager `state` ("READY=1" once the front serves; see docs/api.md, "Running under systemd").
 * Resolves false when $NOTIFY_SOCKET is not set (not started by systemd as Type=notify), true once sent; rejects
 * with NotifyQueueFullError when the manager's queue stayed full for NOTIFY_RETRY_MS. Never blocks the event loop.
 */
export async function notifySystemd(state: string): Promise<boolean> {
  if (typeof state !== "string" || state.length === 0 || state.includes("\0") || Buffer.byteLength(state) > STATE_MAX)
    throw new TypeError(
      `notifySystemd: state is a non-empty string of "KEY=value" lines without NUL, up to ${STATE_MAX} bytes ("READY=1")`,
    )
  const socket = process.env.NOTIFY_SOCKET
  if (!socket) return false
  await loadNative()
  const path = Buffer.from(`${socket}\0`)
  const text = Buffer.from(`${state}\0`)
  const deadline = performance.now() + NOTIFY_RETRY_MS
  const retry = new Backoff({ initialMs: 10, maxMs: 200 })
  let r: number
  while ((r = native.sb_notify(path, text)) === Errno.EAGAIN) {
    const left = deadline - performance.now()
    if (left <= 0)
      throw new NotifyQueueFullError(
        `notifySystemd: NOTIFY_SOCKET ${JSON.stringify(socket)} kept its queue full for ${NOTIFY_RETRY_MS} ms (its manager reads nothing: busy, hung, or not systemd); ${JSON.stringify(state)} was not sent`,
      )
    await sleep(retry.nextWithin(left))
  }
  if (r < 0)
    throw new SlotBusError(
      `notifySystemd: cannot send to NOTIFY_SOCKET ${JSON.stringify(socket)} (errno ${-r}): is it the unit's socket, still open? Unset NOTIFY_SOCKET outside systemd`,
    )
  return true
}
