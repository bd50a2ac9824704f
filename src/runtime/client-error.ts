// A request node:http cannot parse, pipelined behind requests still waiting for their answers: with no 'clientError'
// listener node:http writes its 400 at once and destroys the socket, so the answers before it were lost after their
// work ran (a POST a worker had done came back as a bare 400). `clientError` writes them first, then node:http's
// own answer. node:http's Server under Bun emits the same event on the same socket fields.
import type { IncomingMessage, ServerResponse } from "node:http"

/** The socket node:http hands a 'clientError' listener, with the two fields of its own it reads there too. */
interface ClientSocket {
  readonly writable: boolean
  readonly destroyed: boolean
  /** The answer being written, the ones after it queued (null: none owed). */
  readonly _httpMessage?: ServerResponse | null
  /** The request being parsed (Node's; none under Bun). */
  readonly parser?: { readonly incoming?: IncomingMessage | null } | null
  write(chunk: string): unknown
  end(): unknown
  destroy(): unknown
  once(event: "close", f: () => void): unknown
}

// node:http's answers (lib/_http_server.js socketOnError, Node 26), by the error's code; any other is its 400
const ANSWERS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: "431 Request Header Fields Too Large",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "413 Payload Too Large",
  ERR_HTTP_REQUEST_TIMEOUT: "408 Request Timeout",
}

/** The sockets whose client sent what node:http could not parse: their answer is planned. */
const failed = new WeakSet<object>()

/**
 * How long a connection ended after node:http's answer still reads what its client sends. Closed with bytes unread,
 * a socket sends a reset, which can reach the client before it read the answers and make its kernel drop them: a
 * client that pipelined on after the bad request (they are read and dropped meanwhile, by the failed parser) got
 * nothing back, its POST's answer included, in 1 run of 6. It closes as soon as the client closes its side.
 */
const LINGER_MS = 2000

/** Ends `socket` once its answers are written and lets the client close first, within LINGER_MS (a lingering close). */
function lingerClose(socket: ClientSocket) {
  socket.end()
  const linger = setTimeout(() => socket.destroy(), LINGER_MS)
  linger.unref?.()
  socket.once("close", () => clearTimeout(linger))
}

/**
 * A 'clientError' listener: node:http's own answer to a request it cannot parse (a 400; 431 for a head too large;
 * 408 for its request timeout), written once the answers the connection still waits for are, then the connection
 * closes. With none waiting it is node:http's at once. A request whose body failed (a bad chunk) has no answer to
 * wait for: the ones before it are written, then node:http's answer, and the socket is destroyed, as node:http does.
 */
export function clientError(error: Error & { code?: string }, socket: ClientSocket): void {
  if (failed.has(socket)) {
    // each chunk the client sends now fails again (its parser stays failed): nothing more to do, held in no buffer;
    // node:http's request timeout still ends it, as it would have ended the connection
    if (error?.code === "ERR_HTTP_REQUEST_TIMEOUT") socket.destroy()
    return
  }
  failed.add(socket)
  if (socket.destroyed || error?.code === "ECONNRESET") return void socket.destroy()
  const cut = socket.parser?.incoming
  const broken = cut && !cut.complete ? cut : undefined // its head was taken: its answer is the one not waited for
  const answer = `HTTP/1.1 ${ANSWERS[error?.code ?? ""] ?? "400 Bad Request"}\r\nConnection: close\r\n\r\n`
  const settle = (): void => {
    const owed = socket._httpMessage
    // node:http hands the socket to the next answer as one finishes, before that one's 'close'
    if (owed && owed.req !== broken && !socket.destroyed) return void owed.once("close", settle)
    if (!socket.writable) return // gone, or closing after an answer that said close: nothing to add
    if (!owed?.headersSent) socket.write(answer) // never into the middle of an answer
    if (owed)
      socket.destroy() // the broken request's own answer: as node:http, the connection ends here
    else lingerClose(socket)
  }
  settle()
}

const guarded = new WeakSet<object>()

/**
 * Makes `clientError` `server`'s 'clientError' listener, the first time a listener of slotbus's serves on it, unless
 * it has one of its own by then (that one decides).
 */
export function guardClientErrors(server: unknown): void {
  const s = server as { listenerCount?(event: string): number; on?(event: string, f: typeof clientError): unknown }
  if (typeof s !== "object" || s === null || guarded.has(s)) return
  guarded.add(s)
  if (typeof s.listenerCount === "function" && typeof s.on === "function" && s.listenerCount("clientError") === 0)
    s.on("clientError", clientError)
}
