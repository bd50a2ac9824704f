// Waking on an fd under Bun: its own stream of a file, and a socket over the doorbell's fd (Bun keeps it in epoll).
import type { DoorbellReader, Socket } from "../runtime.ts"
import { connectFd } from "./net.ts"

/** The event loop polls `fd` (non-blocking) and settles a read per wake-up; Bun never closes the fd itself. */
export const fdReader = (fd: number) => Bun.file(fd).stream().getReader() as ReadableStreamDefaultReader<Uint8Array>

/**
 * A doorbell's read end as a Bun socket: Bun keeps it in epoll, so a wake is epoll_wait + one recv (Bun.file(fd)'s
 * stream re-armed and read three times: bench/doorbell/pingpong.ts). Bun closes the fd with the socket.
 */
export function doorbellReader(fd: number, onWake: (rings: number) => void): DoorbellReader {
  let closed = false
  let socket: Socket | undefined
  connectFd<undefined>(fd, undefined, { data: (_s, bytes) => onWake(bytes.length) }).then(
    (s) => (closed ? s.end() : (socket = s)),
    () => {},
  )
  return {
    close() {
      if (closed) return
      closed = true
      socket?.end()
    },
  }
}
