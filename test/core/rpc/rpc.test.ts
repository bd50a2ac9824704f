// RPC between a hub and real worker processes (test/support/core/rpc-worker.ts): bus.remote<Api>() calls the
// functions SlotWorker.expose serves, typed by the worker module's API type.
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { serialize } from "bun:jsc"
import {
  PayloadTooLargeError,
  ProtocolError,
  RemoteError,
  SlotBus,
  SlotWorker,
  TimeoutError,
  UnknownMethodError,
  WorkerGoneError,
  withSignal,
  type Remote,
} from "../../../src/index.ts"
import {
  bunChild,
  busName,
  type Child,
  pattern,
  rejection,
  sentToWorkers,
  spawnWorker,
  stopAll,
} from "../../support/helpers.ts"
import { api as localApi, type Api } from "../../support/core/rpc-worker.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"
import type { PeerApi } from "../../support/runtime/rpc-values.ts"
import { RpcVerb } from "../../../src/core/wire/rpc-status.ts"

afterEach(stopAll)
afterAll(removeNodeBuilds)

/** A bus with `n` rpc-worker.ts processes connected. */
async function withRpcWorkers(
  n: number,
  fn: (bus: SlotBus, workers: Child[]) => Promise<void>,
  flags: string[] = [],
): Promise<void> {
  const bus = await SlotBus.listen(busName("rpc"))
  const workers: Child[] = []
  try {
    for (let i = 0; i < n; i++) {
      const w = bunChild("core/rpc-worker.ts", [bus.name, ...flags])
      workers.push(w)
      await w.waitLine(/^ready$/)
    }
    await bus.waitForWorkers(n)
    await fn(bus, workers)
  } finally {
    await Promise.all(workers.map((w) => w.kill()))
    await bus.close({ drain: false })
  }
}

describe("calls and results", () => {
  test("a call resolves with the worker function's result, sync or async, and `this` is the exposed object", () =>
    withRpcWorkers(1, async (bus) => {
      const api = bus.remote<Api>()
      expect(await api.add(2, 3)).toBe(5)
      expect(await api.echo({ a: [1, "x", null], b: { c: true } })).toEqual({ a: [1, "x", null], b: { c: true } })
      expect(await api.nothing()).toBeUndefined()
      expect(await api.inc()).toBe(1)
      expect(await api.inc()).toBe(2)
      expect(await bus.invoke("add", [40, 2])).toBe(42)
    }))

  test("arguments and results cross as CBOR: Map, Set, Date, BigInt, undefined, NaN, -0, cycles", () =>
    withRpcWorkers(1, async (bus) => {
      const api = bus.remote<Api>()
      const loop: { self?: unknown; n: number } = { n: 1 }
      loop.self = loop
      const value = [new Map([["k", new Set([1n])]]), new Date(5), undefined, Number.NaN, -0, loop]
      const back = await api.echo(value)
      expect(back).toStrictEqual(value)
      const backLoop = back[5] as typeof loop
      expect(backLoop.self).toBe(backLoop)
    }))

  test("a string result goes as its UTF-8 (status 722), and every string comes back as it was", () =>
    withRpcWorkers(1, async (bus) => {
      const api = bus.remote<Api>()
      // "\ufeff…": a byte order mark is text too (a plain TextDecoder dropped it)
      const strings = [
        "",
        "plain",
        'quotes " and \\ and \n',
        "é€★😀",
        "x".repeat(1 << 20),
        "\u0000nul",
        "\ufeffbom",
        "\ufeff",
      ]
      for (const s of strings) expect(await api.echo(s)).toBe(s)
      // a lone surrogate has no UTF-8: it goes as JSON, which keeps it
      for (const s of ["\ud800", "a\udc00b"]) expect(await api.echo(s)).toBe(s)
      // on the wire, as a hub in another language reads it (docs/PROTOCOL.md §6.1)
      const raw = await bus.request({ method: RpcVerb.JSON, path: "echo", body: JSON.stringify(['é<a href="/">']) })
      expect(raw.status).toBe(722)
      expect(raw.text()).toBe('é<a href="/">')
      const lone = await bus.request({ method: RpcVerb.JSON, path: "echo", body: JSON.stringify(["\ud800"]) })
      expect(lone.status).toBe(720)
      expect(lone.text()).toBe('"\\ud800"')
    }))

  test("a sparse array whose length alone is over the body limit is refused at once, as argument or result", () =>
    withRpcWorkers(1, async (bus) => {
      const api = bus.remote<Api>()
      const holes: unknown[] = []
      holes[2 ** 32 - 2] = "last" // the longest array there is: before, 4 GiB of holes were written out first
      expect(await rejection(api.echo(holes))).toBeInstanceOf(PayloadTooLargeError)
      // a worker's result: before, its writer ran on for minutes (the caller got a TimeoutError)
      const err = await rejection(bus.remote<Api>({ timeoutMs: 10_000 }).sparse(2 ** 32 - 1))
      expect(err).toBeInstanceOf(PayloadTooLargeError)
      expect(await api.add(1, 2)).toBe(3) // the worker goes on
    }))

  test("a Uint8Array result goes as its bytes (status 723), and every typed array comes back as its own bytes (CBOR)", () =>
    withRpcWorkers(1, async (bus) => {
      const api = bus.remote<Api>()
      // on the wire, as a hub in another language reads it (docs/PROTOCOL.md §6.1)
      const raw = await bus.request({ method: RpcVerb.JSON, path: "pattern", body: JSON.stringify([5, 1]) })
      expect([raw.status, [...raw.body]]).toEqual([723, [...pattern(5, 1)]])
      const empty = await api.pattern(0)
      expect([empty instanceof Uint8Array, empty.length]).toEqual([true, 0])
      // a view of part of a buffer, a Buffer, another typed array: its own bytes over a buffer of its own (§6.1.1)
      const part = new Uint8Array(new ArrayBuffer(16), 4, 8).fill(7)
      for (const [v, proto] of [
        [part, Uint8Array.prototype],
        [Buffer.from("buffer"), Uint8Array.prototype],
        [new Uint16Array([1, 2]), Uint16Array.prototype],
        [pattern(4096, 5), Uint8Array.prototype],
      ] as const) {
        const back = (await api.echo(v)) as Uint8Array
        expect([...back]).toEqual([...v])
        expect(Object.getPrototypeOf(back)).toBe(proto)
        expect([back.byteOffset, back.buffer.byteLength]).toEqual([0, v.byteLength])
      }
    }))

  test("typed arrays cross as bytes both ways, 1 MiB and empty, and a kept argument stays intact", () =>
    withRpcWorkers(1, async (bus) => {
      const api = bus.remote<Api>()
      const big = pattern(1 << 20, 3)
      expect(await api.sum(big)).toBe(big.reduce((s, b) => s + b, 0))
      expect(await api.sum(new Uint8Array(0))).toBe(0)
      const out = await api.pattern(1 << 20, 9)
      expect(out).toBeInstanceOf(Uint8Array)
      expect(out).toEqual(pattern(1 << 20, 9))
      const floats = new Float64Array([0.5, -0, Number.NaN])
      expect(await api.echo(floats)).toStrictEqual(floats)
      // The worker keeps a large argument (it came in a slot view): later calls reuse that slot.
      expect(await api.keep(big)).toBe(big.length)
      for (let i = 0; i < 40; i++) await api.sum(pattern(8192, i))
      expect(await api.keptSum()).toBe(big.reduce((s, b) => s + b, 0))
    }))

  test("32 calls in flight from one hub to 2 workers all come back, each with its own answer, from both", () =>
    withRpcWorkers(2, async (bus, workers) => {
      const api = bus.remote<Api>()
      const results = await Promise.all(Array.from({ length: 32 }, (_, i) => api.tagged(i)))
      expect(results.map((r) => r.i)).toEqual(Array.from({ length: 32 }, (_, i) => i))
      expect(new Set(results.map((r) => r.pid))).toEqual(new Set(workers.map((w) => w.pid)))
      const sums = await Promise.all(Array.from({ length: 32 }, (_, i) => api.add(i, i)))
      expect(sums).toEqual(Array.from({ length: 32 }, (_, i) => 2 * i))
    }))

  test("the proxy is not a thenable: it can be awaited and returned from an async function", async () => {
    await using bus = await SlotBus.listen(busName("rpc"))
    const api = bus.remote<Api>()
    expect(await api).toBe(api)
    expect((api as unknown as { then?: unknown }).then).toBeUndefined()
    // JSON.stringify and string conversion call nothing on the worker (before: an RPC call, whose rejection ended Node)
    expect(JSON.stringify({ api })).toBe('{"api":{}}')
    expect(`${api}`).toBe("[slotbus remote]")
    expect(bus.stats().requests).toBe(0)
    expect(() => {
      ;(api as unknown as Record<string, unknown>).add = 1
    }).toThrow(TypeError)
  })
})

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `a 1 MiB BigInt crosses to a ${runtime} worker and back, and the calls beside it are answered`,
    async () => {
      // failed before (by the timeout): a bignum was read and written a byte a shift, in quadratic time; a worker
      // answering a 400 KB one held the front's event loop 23 s (Bun) to 81 s (Node), its other calls with it
      await using bus = await SlotBus.listen(busName("rpc-bignum"))
      const w = await peerChild(runtime, "runtime/rpc-peer.ts", [bus.name, "worker"])
      await w.waitLine(/^ready$/, 30_000)
      await bus.waitForWorkers(1)
      const api = bus.remote<PeerApi>()
      const big = BigInt(`0x9d${"a5".repeat((1 << 20) - 1)}`)
      const beside = Array.from({ length: 8 }, (_, i) => api.echo(i))
      const [back, negative, ...others] = await Promise.all([api.echo(big), api.echo(-big), ...beside])
      expect(back === big).toBe(true)
      expect(negative === -big).toBe(true)
      expect(others).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    },
    30_000,
  )

describe("errors", () => {
  test("an Error thrown by the function, sync or async, rejects as RemoteError with its name, message and stack", () =>
    withRpcWorkers(1, async (bus) => {
      const api = bus.remote<Api>()
      for (const [call, name, message] of [
        [api.fail("size must be > 0"), "RangeError", "size must be > 0"],
        [api.failLater("later"), "TypeError", "later"],
      ] as const) {
        const e = (await rejection(call)) as RemoteError
        expect(e).toBeInstanceOf(RemoteError)
        expect(e.message).toBe(`${name}: ${message}`)
        expect(e.remoteName).toBe(name)
        expect(e.remoteStack).toContain("rpc-worker.ts")
      }
      expect(await api.add(1, 1)).toBe(2) // the worker goes on serving
    }))

  test.each<[string, unknown, string]>([
    ["a string", "plain string", '"plain string"'],
    ["a number", 42, "42"],
    ["an object", { code: "E_SIZE", max: 300 }, '{code: "E_SIZE", max: 300}'],
    ["undefined", undefined, "undefined"],
  ])("a function that throws %s rejects as RemoteError with the value as its cause", (_, thrown, shown) =>
    withRpcWorkers(1, async (bus) => {
      const e = (await rejection(bus.remote<Api>().throwValue(thrown))) as RemoteError
      expect(e).toBeInstanceOf(RemoteError)
      // shown by kit/checks/preview.ts: the same from a Node front (test/kit/checks/preview.test.ts)
      expect(e.message).toBe(`throwValue() threw a value that is not an Error: ${shown}`)
      expect(e.cause).toStrictEqual(thrown)
      expect(e.remoteName).toBeUndefined()
    }),
  )

  test("an Error without a stack in a thrown value shows its name and message, not the decoder's frames", () =>
    withRpcWorkers(1, async (bus) => {
      // before: the Error took the stack of the worker's decoder that made it, and the hub's preview of the thrown
      // value printed it (under Bun, lines of cbor-read.ts's source)
      const inner = new TypeError("boom")
      delete (inner as { stack?: string }).stack
      const e = (await rejection(bus.remote<Api>().throwValue([inner]))) as RemoteError
      expect(e.message).toBe("throwValue() threw a value that is not an Error: [[TypeError: boom]]")
      expect(e.message).not.toContain("cbor-read")
      expect((e.cause as Error[])[0]!.stack).toBe("TypeError: boom")
    }))

  test("a result the encoding cannot carry is a RemoteError for that call only", () =>
    withRpcWorkers(1, async (bus) => {
      const api = bus.remote<Api>()
      const [bad, good] = await Promise.allSettled([api.unclonable(), api.add(1, 2)])
      expect(bad.status === "rejected" && bad.reason).toBeInstanceOf(RemoteError)
      expect((bad as PromiseRejectedResult).reason.remoteName).toBe("DataCloneError")
      expect((bad as PromiseRejectedResult).reason.message).toContain("the result of unclonable() cannot be sent back")
      expect((bad as PromiseRejectedResult).reason.message).toContain("carries data, not a function")
      expect(good).toEqual({ status: "fulfilled", value: 3 })
    }))

  test("arguments the encoding cannot carry are a TypeError, and nothing is sent", async () => {
    await using bus = await SlotBus.listen(busName("rpc"))
    const api = bus.remote<Api>()
    const e = await rejection(api.echo(() => 1))
    expect(e).toBeInstanceOf(TypeError)
    expect((e as Error).message).toContain("the arguments of echo() cannot be sent")
    expect(sentToWorkers(bus)).toBe(0)
  })

  test("an unknown function is an UnknownMethodError naming what the worker exposes and the nearest name", () =>
    withRpcWorkers(1, async (bus) => {
      // @ts-expect-error: the worker's API has no "ad"
      const e = (await rejection(bus.remote<Api>().ad(1, 2))) as UnknownMethodError
      expect(e).toBeInstanceOf(UnknownMethodError)
      expect(e.method).toBe("ad")
      expect(e.methods).toContain("add")
      expect(e.methods).not.toContain("count") // a number, not a function
      expect(e.message).toContain('did you mean "add"?')
      for (const name of ["constructor", "toString", "hasOwnProperty", "__proto__"])
        expect(await rejection(bus.invoke(name, []))).toBeInstanceOf(UnknownMethodError)
    }))

  test("a call that reaches a plain SlotWorker.connect worker is an UnknownMethodError saying so", async () => {
    await using bus = await SlotBus.listen(busName("rpc"))
    await spawnWorker(bus.name)
    await bus.waitForWorkers(1)
    const e = await rejection(bus.remote<Api>().add(1, 2))
    expect(e).toBeInstanceOf(UnknownMethodError)
    expect((e as Error).message).toContain("answered as a plain handler")
  })

  test("a reply that does not decode is a ProtocolError for that call only, and its slot goes straight back", async () => {
    await using bus = await SlotBus.listen(busName("rpc-garbled"), { slots: 1 })
    const w = bunChild("core/garbled-rpc-worker.ts", [bus.name])
    await w.waitLine(/^ready$/)
    await bus.waitForWorkers(1)
    const remote = bus.remote<Api>()
    for (let i = 0; i < 3; i++) {
      const e = await rejection(remote.add(1, 2))
      expect(e).toBeInstanceOf(ProtocolError)
      expect((e as Error).message).toContain("does not decode as an RPC reply")
    }
    // the answers came (counted as answers, not errors of the bus) and the one slot is free for the next request
    expect(bus.stats()).toMatchObject({ requests: 3, responses: 3, errors: 0, inFlight: 0 })
    const r = await bus.request({ path: "/after" })
    expect([r.status, r.text()]).toEqual([720, "{not json"])
  })

  test("a reply in the retired structured-clone encoding (721, an older worker) is a ProtocolError saying so", async () => {
    await using bus = await SlotBus.listen(busName("rpc-retired"))
    const w = bunChild("core/garbled-rpc-worker.ts", [bus.name, "--retired"])
    await w.waitLine(/^ready$/)
    await bus.waitForWorkers(1)
    const e = await rejection(bus.remote<Api>().add(1, 2))
    expect(e).toBeInstanceOf(ProtocolError)
    expect((e as Error).message).toContain("retired structured-clone encoding (status 721")
    expect((e as Error).message).toContain("run the same slotbus release on the hub and its workers")
  })

  test("a call in the retired rpc:clone encoding (an older hub) is refused with a ProtocolError, and the worker goes on", () =>
    withRpcWorkers(1, async (bus) => {
      const e = await rejection(
        bus.request({ method: "rpc:clone", path: "add", body: new Uint8Array(serialize([1, 2])) }),
      )
      expect(e).toBeInstanceOf(RemoteError)
      expect((e as RemoteError).remoteName).toBe("ProtocolError")
      expect((e as Error).message).toContain("retired rpc:clone encoding")
      expect(await bus.remote<Api>().add(1, 2)).toBe(3)
    }))

  test("a worker killed mid-call rejects the call with WorkerGoneError", () =>
    withRpcWorkers(1, async (bus, [worker]) => {
      const call = rejection(bus.remote<Api>().wait("killed"))
      await worker!.waitLine(/^waiting killed$/)
      worker!.signal("SIGKILL")
      expect(await call).toBeInstanceOf(WorkerGoneError)
    }))

  test("a worker killed -9 mid-call: an idempotent call is answered by another worker, a plain one is WorkerGoneError", async () => {
    const bus = await SlotBus.listen(busName("rpc"), { timeoutMs: 30_000 })
    const hanging = bunChild("core/rpc-worker.ts", [bus.name, "--hang"])
    try {
      await hanging.waitLine(/^ready$/)
      await bus.waitForWorkers(1)
      const idem = bus.remote<Api>({ idempotent: true }).whoAnswers("idem")
      const invoked = bus.invoke("whoAnswers", ["invoked"], { idempotent: true })
      const plain = rejection(bus.remote<Api>().whoAnswers("plain"))
      for (const id of ["idem", "invoked", "plain"]) await hanging.waitLine(new RegExp(`^holding ${id}$`))
      const other = bunChild("core/rpc-worker.ts", [bus.name])
      await other.waitLine(/^ready$/)
      await bus.waitForWorkers(2)
      hanging.signal("SIGKILL")
      expect(await plain).toBeInstanceOf(WorkerGoneError)
      expect(await idem).toBe(other.pid)
      expect(await invoked).toBe(other.pid)
    } finally {
      await hanging.kill()
      await bus.close({ drain: false })
    }
  }, 30_000)
})

describe("cancellation", () => {
  test("aborting a call's signal rejects it with the reason and aborts the function's signal on the worker", () =>
    withRpcWorkers(1, async (bus, [worker]) => {
      const ac = new AbortController()
      const call = rejection(bus.remote<Api>({ signal: ac.signal }).wait("aborted-call"))
      await worker!.waitLine(/^waiting aborted-call$/)
      ac.abort(new Error("caller gave up"))
      expect(((await call) as Error).message).toBe("caller gave up")
      await worker!.waitLine(/^aborted aborted-call AbortError$/)
      expect(await bus.remote<Api>().add(1, 2)).toBe(3)
    }))

  test("a call's timeout rejects it with TimeoutError and aborts the function's signal on the worker", () =>
    withRpcWorkers(1, async (bus, [worker]) => {
      const call = rejection(bus.remote<Api>({ timeoutMs: 300 }).wait("timed-out"))
      await worker!.waitLine(/^waiting timed-out$/)
      expect(await call).toBeInstanceOf(TimeoutError)
      await worker!.waitLine(/^aborted timed-out AbortError$/)
    }))

  test("an already aborted signal rejects at once; bus.invoke takes the same options", async () => {
    await using bus = await SlotBus.listen(busName("rpc"))
    const reason = new Error("already")
    expect(await rejection(bus.remote<Api>({ signal: AbortSignal.abort(reason) }).add(1, 2))).toBe(reason)
    expect(await rejection(bus.invoke("add", [1, 2], { signal: AbortSignal.abort(reason) }))).toBe(reason)
    expect(sentToWorkers(bus)).toBe(0)
  })

  test("withSignal's function called in-process gets a signal that never aborts", async () => {
    const f = withSignal((signal: AbortSignal, n: number) => (signal.aborted ? -1 : n * 2))
    expect(f(21)).toBe(42)
    expect(f.name).toBe("")
    expect(await Promise.race([localApi.wait("local"), Bun.sleep(5).then(() => "still waiting")])).toBe("still waiting")
  })
})

describe("a worker that exposes functions and serves other requests", () => {
  test("requests that are not RPC calls go to its handler; without one they fail saying what to do", async () => {
    await withRpcWorkers(
      1,
      async (bus) => {
        expect((await bus.request({ path: "/plain" })).text()).toBe("plain /plain")
        expect(await bus.remote<Api>().add(1, 2)).toBe(3)
      },
      ["--with-handler"],
    )
    await withRpcWorkers(1, async (bus) => {
      const e = await rejection(bus.request({ method: "RPC", path: "/add" }))
      expect(e).toBeInstanceOf(RemoteError)
      expect((e as Error).message).toContain("pass { handler } to SlotWorker.expose")
    })
  })

  test("an HTTP client cannot pose as an RPC call: the RPC verbs are not HTTP tokens, and Bun.serve refuses them", async () => {
    const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
    const reached: string[] = []
    using server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req) => new Response(reached.push(req.method) ? "ok" : ""),
    })
    for (const verb of Object.values(RpcVerb)) {
      expect(verb).not.toMatch(TOKEN)
      const answer = Promise.withResolvers<string>()
      const socket = await Bun.connect({
        hostname: "127.0.0.1",
        port: server.port!,
        socket: { data: (_, bytes) => answer.resolve(bytes.toString().split("\r\n")[0]!) },
      })
      socket.write(`${verb} /add HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`)
      expect(await answer.promise).toBe("HTTP/1.1 400 Bad Request")
      socket.end()
    }
    expect(reached).toEqual([])
  })
})

describe("bad arguments", () => {
  test.each<[string, (bus: SlotBus) => unknown, typeof TypeError]>([
    ["remote with an unknown option", (bus) => bus.remote({ timeout: 5 } as never), TypeError],
    ["remote with a signal that is not an AbortSignal", (bus) => bus.remote({ signal: "no" } as never), TypeError],
    ["remote with a negative timeoutMs", (bus) => bus.remote({ timeoutMs: -1 }), RangeError],
    ["remote with options that are not an object", (bus) => bus.remote(5 as never), TypeError],
    ["remote with an idempotent that is not a boolean", (bus) => bus.remote({ idempotent: 1 } as never), TypeError],
  ])("%s throws", async (_, call, type) => {
    await using bus = await SlotBus.listen(busName("rpc"))
    expect(() => call(bus)).toThrow(type)
  })

  test.each<[string, (bus: SlotBus) => Promise<unknown>, typeof TypeError]>([
    ["invoke with arguments that are not an array", (bus) => bus.invoke("add", 1 as never), TypeError],
    ["invoke of an empty name", (bus) => bus.invoke("", []), TypeError],
    ["invoke of a name with NUL", (bus) => bus.invoke("a\0b", []), TypeError],
    ["invoke of a symbol", (bus) => bus.invoke(Symbol("x") as never, []), TypeError],
    ["invoke with an unknown option", (bus) => bus.invoke("add", [], { signl: 1 } as never), TypeError],
    ["invoke with a fractional timeoutMs", (bus) => bus.invoke("add", [], { timeoutMs: 1.5 }), RangeError],
    [
      "invoke with an idempotent that is not a boolean",
      (bus) => bus.invoke("add", [], { idempotent: "yes" } as never),
      TypeError,
    ],
  ])("%s rejects, and nothing is sent", async (_, call, type) => {
    await using bus = await SlotBus.listen(busName("rpc"))
    expect(await rejection(call(bus))).toBeInstanceOf(type)
    expect(sentToWorkers(bus)).toBe(0)
  })

  test.each<[string, () => Promise<unknown>, string]>([
    ["null instead of an object", () => SlotWorker.expose(busName("x"), null as never), "object of functions"],
    ["an array", () => SlotWorker.expose(busName("x"), [() => 1]), "object of functions"],
    ["an object without functions", () => SlotWorker.expose(busName("x"), { n: 1 }), "no functions"],
    ["an unknown option", () => SlotWorker.expose(busName("x"), localApi, { fetch: true } as never), '"fetch"'],
    [
      "a handler that is not a function",
      () => SlotWorker.expose(busName("x"), localApi, { handler: 1 as never }),
      "handler",
    ],
  ])("SlotWorker.expose of %s is a TypeError before it connects", async (_, call, says) => {
    const e = await rejection(call())
    expect(e).toBeInstanceOf(TypeError)
    expect((e as Error).message).toContain(says)
  })

  test("withSignal takes a function", () => {
    expect(() => withSignal(5 as never)).toThrow(TypeError)
  })
})

test("the hub's typing follows the worker's API: wrong arguments and unknown functions do not compile", () => {
  // Checked by `tsc --noEmit` (test/ is in tsconfig.json): each @ts-expect-error must meet an error.
  const typed = async (api: Remote<Api>) => {
    const sum: number = await api.add(1, 2)
    const bytes: Uint8Array = await api.pattern(4)
    const waited: string = await api.wait("id") // withSignal's signal is the worker's, not an argument
    const generic: { n: number } = await api.echo({ n: 1 }) // a generic async function keeps its generics
    // @ts-expect-error: add takes numbers
    await api.add("1", 2)
    // @ts-expect-error: add takes two arguments
    await api.add(1)
    // @ts-expect-error: the worker's API has no "resize"
    await api.resize(bytes, 300)
    // @ts-expect-error: count is a number, not a function
    await api.count
    // @ts-expect-error: the result of add is a number
    const wrong: string = await api.add(1, 2)
    // @ts-expect-error: the signal is not the caller's to pass
    await api.wait(new AbortController().signal, "id")
    // @ts-expect-error: echo's generic result follows its argument
    const notGeneric: string = await api.echo({ n: 1 })
    return [sum, bytes, waited, generic, wrong, notGeneric]
  }
  const syncGeneric = async (g: Remote<{ id<T>(v: T): T }>) => {
    const p: Promise<unknown> = g.id(1) // a function that is not async answers with a Promise too
    // @ts-expect-error: not a number: a Promise of one
    const n: number = g.id(1)
    return [await p, n]
  }
  expect(typeof syncGeneric).toBe("function")
  expect(typeof typed).toBe("function")
})
