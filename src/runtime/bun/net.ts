// Sockets on Bun: Bun.listen and Bun.connect, which take the contract's handler objects as they are.
import type { Runtime, Socket, SocketHandlers, SocketOptions } from "../runtime.ts"

export const listen = Bun.listen as Runtime["listen"]
export const connect = <T = undefined>(options: SocketOptions<T>): Promise<Socket<T>> => Bun.connect(options as never)

/** A socket over a connected fd (libslotbus's): Bun.connect takes an fd; its types do not say so (CONNECT_FD_UNTYPED). */
export function connectFd<T>(fd: number, data: T, socket: SocketHandlers<T>): Promise<Socket<T>> {
  return Bun.connect({ fd, data, socket } as unknown as Parameters<typeof Bun.connect<T>>[0])
}
