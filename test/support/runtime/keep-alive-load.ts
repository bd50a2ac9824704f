// Keep-alive load over raw sockets, for test/runtime/graceful.test.ts: each connection sends a request, reads the
// whole answer and sends the next on the same connection until an answer says `Connection: close`; then it connects
// again (as an HTTP agent does) or, with `reconnect: false`, it is done (as a load balancer that took the front out).
// A request sent and not answered 200 (the connection reset or closed under it, another status) is a failure.
import { connect, type Socket } from "node:net"

export interface LoadResult {
  answered: number
  /** Requests sent and not answered 200: how each failed. */
  failed: string[]
  /** Connections refused (the front no longer listens): no request was sent on them. */
  refused: number
  /** Answers that said `Connection: close`. */
  toldToClose: number
}

export function keepAliveLoad(port: number, connections: number, reconnect: boolean, path = "/x", method = "GET") {
  const r: LoadResult = { answered: 0, failed: [], refused: 0, toldToClose: 0 }
  let running = true
  const length = method === "GET" ? "" : "Content-Length: 0\r\n"
  const request = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${length}\r\n`
  const loop = async () => {
    while (running) {
      const s = await new Promise<Socket | null>((ok) => {
        const s = connect(port, "127.0.0.1")
        s.once("connect", () => ok(s))
        s.once("error", (e: NodeJS.ErrnoException) => {
          if (e.code === "ECONNREFUSED") r.refused++
          else r.failed.push(`connect: ${e.code}`)
          ok(null)
        })
      })
      if (!s) return
      s.removeAllListeners("error")
      const more = await serve(s)
      s.destroy()
      if (!more || !reconnect) return
    }
  }
  // requests on one connection until told to close (true: connect again) or it failed (false)
  const serve = (s: Socket) =>
    new Promise<boolean>((done) => {
      let buf = Buffer.alloc(0)
      let outstanding = false
      const send = () => {
        if (!running) return done(false)
        outstanding = true
        s.write(request)
      }
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d])
        for (;;) {
          const end = buf.indexOf("\r\n\r\n")
          if (end < 0) return
          const head = buf.subarray(0, end).toString("latin1")
          const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
          if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
            const term = buf.indexOf("0\r\n\r\n", end + 4)
            if (term < 0) return
            buf = buf.subarray(term + 5)
          } else {
            if (buf.length < end + 4 + len) return
            buf = buf.subarray(end + 4 + len)
          }
          outstanding = false
          const status = Number(head.split(" ")[1])
          if (status !== 200) r.failed.push(`status ${status}`)
          else r.answered++
          if (/\r\nconnection: *close/i.test(head)) {
            r.toldToClose++
            return done(true)
          }
          send()
        }
      })
      s.on("error", (e: NodeJS.ErrnoException) => {
        if (outstanding) r.failed.push(`${e.code ?? e.message} with a request out`)
        outstanding = false
        done(false)
      })
      s.on("close", () => {
        if (outstanding) r.failed.push("closed with a request out")
        outstanding = false
        done(false)
      })
      send()
    })
  const loops = Array.from({ length: connections }, loop)
  return {
    result: r,
    /** Ends the load: each connection stops after its answer; resolves with the counts. */
    async stop(): Promise<LoadResult> {
      running = false
      await Promise.all(loops)
      return r
    },
    /** Resolves once every connection ended by itself (told to close, refused or failed). */
    ended: Promise.all(loops).then(() => r),
  }
}
