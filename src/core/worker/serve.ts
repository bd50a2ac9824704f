// One serving pipeline for every request a worker takes, from a slot or through a remote transport: the handler
// runs, what it returns is awaited (any thenable), read first (a Response, a Blob, a stream body that is all there)
// or streamed, and encoded into where the answer goes, an AnswerSink. Only the sink knows where that is.
import {
  encodeAnswer,
  isAsyncReply,
  readAsyncReply,
  streamParts,
  webReply,
  Whole,
  wholeOrStream,
  type StreamParts,
} from "./answer.ts"
import type { Answer } from "../wire/remote.ts"
import type { SlotRequest } from "./request.ts"
import { isThenable } from "../../kit/index.ts"
import { serverTrace } from "../probe/trace.ts"

/** How a streamed answer went: over, or it could not begin (`error` then, if it was an error, answered whole). */
export type StreamEnd = { begun: true } | { begun: false; error?: unknown }

/** Where one request's answer goes: a slot of the worker's channel (worker.ts) or a remote transport's sink. */
export interface AnswerSink {
  /** The caller may still get an answer (its hub is there). */
  readonly open: boolean
  /** The stream window the hub offered this request, 0 for none (or once taken: an answer streams at most once). */
  readonly window: number
  /** The window, taken: 0 from now on. */
  takeWindow(): number
  /** Where the answer is encoded (docs/PROTOCOL.md §6): the start of it, at least `need` bytes (all of it if fewer). */
  arena(need: number): Uint8Array
  /** How many bytes an answer may take there. */
  readonly room: number
  /** What the room is, "%d" its size, and how to get more (the error of an answer too large for it). */
  readonly roomIs: string
  /** The answer is in arena(). */
  complete(a: Answer): void
  /** Streams the answer (within `window`, as taken); resolves once it is over, or could not begin. */
  stream(parts: StreamParts, window: number, req: SlotRequest): Promise<StreamEnd>
  /** The request is over (answered, streamed, or nobody waits any more): let go of it. */
  release(req: SlotRequest): void
}

/** The pipeline, and its counts: handlers running now and requests answered. */
export class Serving {
  active = 0
  served = 0

  constructor(private readonly handler: (req: SlotRequest) => unknown) {}

  /** Runs the handler for `req`; a handler that returns (no promise) is answered before this returns. */
  serve(req: SlotRequest, sink: AnswerSink) {
    this.active++
    let out: unknown
    try {
      out = serverTrace.run(req, req.busName, this.handler) // in a SERVER span when traced with an SDK (trace.ts)
    } catch (e) {
      return this.answer(req, sink, e, true)
    }
    if (out instanceof Promise || isThenable(out))
      Promise.resolve(out).then(
        (r) => this.answer(req, sink, r, false),
        (e) => this.answer(req, sink, e, true),
      )
    else this.answer(req, sink, out, false)
  }

  /** What the handler gave (`threw`: its error), streamed, read first, or encoded whole into the sink. */
  private answer(req: SlotRequest, sink: AnswerSink, out: unknown, threw: boolean): void {
    // bytes (the common raw reply) are neither a stream nor read asynchronously
    if (!threw && !(out instanceof Uint8Array)) {
      // a body only a Response takes (URLSearchParams, FormData, an async iterable): that Response's stream
      try {
        out = webReply(out) ?? out
      } catch (e) {
        return this.answer(req, sink, e, true)
      }
      if (sink.window > 0) {
        let parts: StreamParts | null
        try {
          parts = streamParts(out)
        } catch (e) {
          return this.answer(req, sink, e, true)
        }
        if (parts) {
          const window = sink.takeWindow() // answered as a stream, or (if that cannot start) whole: never twice
          wholeOrStream(parts, sink.room, window)
            .then((w) => {
              if (w instanceof Whole) return this.answer(req, sink, w, false)
              serverTrace.answered(req, w.status, false)
              return sink
                .stream(w, window, req)
                .then((r) => (r.begun ? this.over(req, sink) : this.answer(req, sink, r.error, r.error !== undefined)))
            })
            .catch((e) => this.answer(req, sink, e, true))
          return
        }
      }
      if (isAsyncReply(out)) {
        readAsyncReply(out).then(
          (r) => this.answer(req, sink, r, false),
          (e) => this.answer(req, sink, e, true),
        )
        return
      }
    }
    if (threw) serverTrace.failed(req, out)
    try {
      if (sink.open) {
        const a = encodeAnswer(sink, req, out, threw)
        serverTrace.answered(req, a.status, threw)
        sink.complete(a)
      } // else nobody waits for it
    } finally {
      this.over(req, sink)
    }
  }

  private over(req: SlotRequest, sink: AnswerSink) {
    this.active--
    this.served++
    serverTrace.ended(req)
    sink.release(req)
  }
}
