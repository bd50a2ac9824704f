// A durable topic's messages with the stream's answers (docs/PROTOCOL.md §11.6): each message goes out with a
// reply subject of one inbox, numbered, so one subscription takes every answer and the number says whose; one timer
// fails what waited too long. (JetStream's publish() makes a request, with its own timer and promise, a message:
// about 1.6× the CPU a message on a bridge that sends tens of thousands a second.)
import type { MsgHdrs, NatsConnection, Subscription } from "@nats-io/transport-node"
import type { NatsUse } from "./shared.ts"

/**
 * Settles a message: true once the stream stored it (or had: a duplicate of its Nats-Msg-Id), false if not;
 * `reconnected`: failed because the connection came back, so sending again need not wait.
 */
export type Answered = (stored: boolean, reconnected?: boolean) => void

const utf8 = new TextDecoder()

export class StreamAcks {
  private readonly inbox: string
  private readonly sub: Subscription
  private readonly waiting = new Map<number, { done: Answered; at: number }>() // by number, oldest first
  private next = 0
  private readonly timer: ReturnType<typeof setInterval>
  private readonly nc: NatsConnection

  constructor(
    use: Pick<NatsUse, "nc" | "onStatus">,
    private readonly headers: () => MsgHdrs,
    inbox: string,
    private readonly timeoutMs: number,
  ) {
    const nc = (this.nc = use.nc)
    this.inbox = inbox
    use.onStatus((st) => st.type === "reconnect" && this.reconnected())
    this.sub = nc.subscribe(`${inbox}.*`, {
      callback: (err, m) => {
        if (err) return
        const n = Number(m.subject.slice(inbox.length + 1))
        const w = this.waiting.get(n)
        if (!w) return // answered late, after it was failed: what it stored goes again under its Nats-Msg-Id
        this.waiting.delete(n)
        w.done(stored(m.headers, m.data))
      },
    })
    this.timer = setInterval(() => this.expire(), Math.min(1000, timeoutMs))
    this.timer.unref?.()
  }

  /** Publishes `msg` on `subject` with its Nats-Msg-Id; `done` is called once, with the stream's answer. */
  publish(subject: string, msg: Uint8Array, msgId: string, done: Answered) {
    const n = ++this.next
    const h = this.headers()
    h.set("Nats-Msg-Id", msgId)
    this.waiting.set(n, { done, at: performance.now() })
    this.nc.publish(subject, msg, { reply: `${this.inbox}.${n}`, headers: h })
  }

  /**
   * The connection came back: what still waits is failed now, not at its timeout. An answer sent to the connection
   * that dropped is not coming; one for a message written since only repeats what the resend's Nats-Msg-Id drops.
   */
  private reconnected() {
    const failed = [...this.waiting.values()]
    this.waiting.clear()
    for (const w of failed) w.done(false, true)
  }

  /** No answer within timeoutMs (the stream's server down, its quorum lost, the connection still away): failed. */
  private expire() {
    const old = performance.now() - this.timeoutMs
    for (const [n, w] of this.waiting) {
      if (w.at > old) break
      this.waiting.delete(n)
      w.done(false)
    }
  }

  close() {
    clearInterval(this.timer)
    this.sub.unsubscribe()
    this.waiting.clear()
  }
}

/** Whether an answer is the stream's PubAck (a JSON object with its sequence), not an error or a 503 (no stream). */
function stored(headers: MsgHdrs | undefined, data: Uint8Array): boolean {
  if (headers?.hasError) return false
  try {
    const a = JSON.parse(utf8.decode(data)) as { seq?: unknown; error?: unknown }
    return a.error === undefined && typeof a.seq === "number"
  } catch {
    return false
  }
}
