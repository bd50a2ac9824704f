// Bun's behaviours that slotbus works around, each with the Bun version it was seen in, where the workaround lives
// and the canary that fails once a Bun release no longer shows it (test/runtime/quirks.test.ts): then the
// workaround can go, and the entry with it. (nats.js keeps its server features the same way: core/src/semver.ts.)

import type { LateWrite, Quirk } from "../runtime.ts"

/** LATE_WRITE's range: a whole answer of 15–64 KiB resolved late goes out as a one-chunk stream (core/endpoint). */
export const LATE_WRITE: LateWrite = { minBytes: 15 * 1024, maxBytes: 64 * 1024 }

export const BUN_QUIRKS = {
  /**
   * Bun.serve writes a Response resolved after its request callback's turn, head and body over 16 KiB (uWS's cork
   * buffer), in ~15 send calls (each piece of the head its own); in the callback's turn, in one.
   */
  LATE_WRITE: {
    what: "a late Response over 16 KiB goes out in ~15 send calls instead of one",
    seenIn: "1.4.5",
    workaround:
      "LATE_WRITE above, which the core reads as runtime.quirks.lateWrite: heldLate() and inTurnSaves() in src/core/endpoint/response.ts (answerInTurnPays, the in-turn spin of src/core/wire/pump.ts), the late hold in src/http/hub/proxy.ts: a late answer of 15–64 KiB is sent as a closed stream holding its bytes (respond(): a string as itself, which Bun writes as UTF-8)",
    see: "docs/perf/bun-late-write.md; Bun PR #41341 (open: corks a late end()/tryEnd())",
  },
  /** setTimeout stores its delay in 32 bits: a delay past 2^31−1 ms fires at once (a warning, no error). Node's too. */
  TIMER_OVERFLOW: {
    what: "setTimeout past 2^31−1 ms fires at once (Bun.sleep does not overflow)",
    seenIn: "1.4.5",
    workaround:
      "longTimeout/sleep and MAX_TIMER_MS in src/kit/timers.ts; the clamps in src/nats/kv-lease.ts and src/stdio/workers.ts (Node overflows too: these stay for a node runtime)",
    see: "src/kit/timers.ts",
  },
  /**
   * A process whose module still awaits a promise (a top-level `await worker.closed`) stays alive after an uncaught
   * error or an unhandled rejection; Node's ends with code 1.
   */
  UNCAUGHT_KEEPS_ALIVE: {
    what: "an uncaught error does not end a process whose top-level await is pending",
    seenIn: "1.4.5",
    workaround:
      "exitOnUncaught() in src/core/worker/uncaught.ts: the worker's listeners end the process with code 1 (the listeners stay for exitOnUncaught: false and the app's own listeners)",
    see: "issue 64, item 1; test/core/worker/uncaught.test.ts",
  },
  /** node:http's server.close() under Bun closes idle keep-alive connections itself (not through closeIdleConnections). */
  HTTP_CLOSE_DROPS_IDLE: {
    what: "node:http close() resets a kept-alive connection whose next request was sent but not yet read",
    seenIn: "1.4.5",
    workaround:
      "closeGracefully in src/core/hub/close-gracefully.ts waits for each kept-alive client's next request first (quirks.httpCloseDropsIdle)",
    see: "test/runtime/graceful.test.ts (node:http under Bun: 32 of 32 keep-alive clients failed without the wait)",
  },
  /** Bun has no unix datagram socket: Bun.udpSocket ignores a `unix` path and binds a UDP port. */
  NO_UNIX_DATAGRAM: {
    what: "no unix datagram socket (udpSocket({ unix }) binds UDP and creates no file)",
    seenIn: "1.4.5",
    workaround: "sd_notify is sent by libslotbus (sb_notify, src/core/ops/sd-notify.ts) instead of from TypeScript",
    see: "src/core/ops/sd-notify.ts",
  },
  /** Bun.serve prints the Error a Response body's stream fails with on stderr, as if uncaught. */
  STREAM_ERROR_PRINTED: {
    what: "a Response body stream errored with an Error is printed on the server's stderr",
    seenIn: "1.4.5",
    workaround:
      "the hub's streams fail with error(undefined), not the Error (src/http/hub/sse-stream.ts abort(), src/http/hub/proxy.ts's body pull): the worker logged it already",
    see: "src/http/hub/proxy.ts",
  },
  /**
   * `new Response("text")` has no Content-Type in its headers (the Fetch spec, and Node, put text/plain;charset=UTF-8
   * there); Bun.serve adds it only when it writes the Response. Its blob() says text/plain for a bytes body too, which
   * Bun.serve sends as application/octet-stream: nothing public tells a string body from bytes.
   */
  STRING_RESPONSE_UNTYPED: {
    what: "a Response made from a string has no Content-Type in its headers, and no API tells it from bytes",
    seenIn: "1.4.5",
    workaround:
      "none in code: a worker forwards a Response's headers (src/core/worker/answer.ts), so docs/api.md and src/http/README.md tell a Bun worker to name the type; once Bun's headers carry it, it goes through as a Node worker's does",
    see: "src/http/README.md (a Bun worker's string Response)",
  },
  /** Bun.serve closes a connection with nothing written when a request is pipelined behind a pending answer. */
  SERVE_PIPELINE_CLOSES: {
    what: "a request pipelined behind one whose handler has not returned closes the connection: neither is answered",
    seenIn: "1.4.5",
    workaround:
      "none in code (uWS closes the socket before any handler of ours runs): docs/api.md tells users whose clients pipeline to front with nodeHandler or a proxy",
    see: "oven-sh/bun PR #38128 (open); docs/api.md, bus.fetch",
  },
  /** perf_hooks never emits "gc" entries: there is no GC duration to report. */
  NO_GC_EVENTS: {
    what: 'PerformanceObserver has no "gc" entry type',
    seenIn: "1.4.5",
    workaround:
      "src/kit/process-metrics.ts leaves prom-client's nodejs_gc_duration_seconds out (it can come in once gc entries do)",
    see: "src/kit/process-metrics.ts",
  },
  /** Bun.connect takes `{ fd }` (a connected socket's fd) though its types do not say so. */
  CONNECT_FD_UNTYPED: {
    what: "Bun.connect's types have no `fd` option, which it takes",
    seenIn: "1.4.5",
    workaround: "the cast in connectFd (src/runtime/bun/net.ts)",
    see: "the @ts-expect-error in test/runtime/quirks.test.ts: bunx tsc fails once the types have it",
  },
} as const satisfies Record<string, Quirk>
