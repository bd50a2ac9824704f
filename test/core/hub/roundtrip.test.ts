import { afterEach, describe, expect, test } from "bun:test"
import {
  HubNotFoundError,
  NameInUseError,
  PayloadTooLargeError,
  ProtocolError,
  RemoteError,
  SlotBus,
  SlotResponse,
  SlotWorker,
  type ListenOptions,
  type RequestOptions,
  type SlotRequestInit,
} from "../../../src/index.ts"
import {
  busName,
  stopAll,
  pattern,
  randomBytes,
  rejection,
  sentToWorkers,
  sha256,
  withHub,
} from "../../support/helpers.ts"

afterEach(stopAll)

const text = (b: Uint8Array) => new TextDecoder().decode(b)
const MiB = 1024 * 1024

describe("bodies", () => {
  test("empty, small and exactly-maxBodyBytes bodies come back byte for byte, raw and http", async () => {
    await withHub({ maxBodyBytes: 4096 }, [{}], async (bus) => {
      for (const size of [0, 1, 7, 8, 100, 4095, 4096]) {
        const body = pattern(size, size)
        expect(await bus.call(body)).toEqual(body)
        const res = await bus.request({ method: "POST", path: "/echo", body })
        expect(res.status).toBe(200)
        expect(res.body).toEqual(body)
      }
      expect((await bus.request({ path: "/echo" })).body.length).toBe(0)
      expect(await bus.call(null)).toEqual(new Uint8Array(0))
      expect(await bus.call(undefined)).toEqual(new Uint8Array(0))
    })
  })

  test("string and ArrayBuffer bodies are sent as their bytes", async () => {
    await withHub({}, [{}], async (bus) => {
      expect(text(await bus.call("héllo ✓"))).toBe("héllo ✓")
      expect(await bus.call(pattern(10).buffer as ArrayBuffer)).toEqual(pattern(10))
      expect((await bus.request({ method: "PUT", path: "/echo", body: "日本語" })).text()).toBe("日本語")
      expect((await bus.request({ method: "PUT", path: "/echo", body: '{"a":[1,2]}' })).json()).toEqual({ a: [1, 2] })
    })
  })

  test("a body of exactly maxBodyBytes with a head of exactly maxHeadBytes fits its slot", async () => {
    await withHub({ maxBodyBytes: 4096, maxHeadBytes: 256 }, [{}], async (bus) => {
      // head = "POST\0" + "/echo\0" + "x-pad\0" + value + "\0" = 5 + 6 + 6 + value + 1
      const pad = "v".repeat(256 - 18)
      const body = pattern(4096, 3)
      const res = await bus.request({ method: "POST", path: "/echo", headers: { "x-pad": pad }, body })
      expect(res.body).toEqual(body)
      const tooLong = await rejection(
        bus.request({ method: "POST", path: "/echo", headers: { "x-pad": pad + "v" }, body }),
      )
      expect(tooLong).toBeInstanceOf(PayloadTooLargeError)
    })
  })

  test("a body one byte over maxBodyBytes rejects with PayloadTooLargeError, sends nothing, and the bus stays usable", async () => {
    await withHub({ maxBodyBytes: 4096 }, [{}], async (bus) => {
      await bus.call("warm up")
      const before = bus.stats()
      const raw = await rejection(bus.call(new Uint8Array(4097)))
      const http = await rejection(bus.request({ method: "POST", path: "/echo", body: new Uint8Array(4097) }))
      for (const e of [raw, http]) {
        expect(e).toBeInstanceOf(PayloadTooLargeError)
        expect((e as Error).message).toContain("maxBodyBytes")
      }
      const after = bus.stats()
      expect(after.requests).toBe(before.requests + 2) // made, and refused
      expect(after.errors).toBe(before.errors + 2)
      expect(after.bytesOut).toBe(before.bytesOut)
      expect(after.inFlight).toBe(0)
      expect(after.queued).toBe(0)
      const stats = (await bus.request({ path: "/stats" })).json<{ served: number }>()
      expect(stats.served).toBe(2) // the warm-up and this one
      expect(await bus.call(pattern(4096))).toEqual(pattern(4096))
    })
  })

  test("a 64 MiB random body crosses both ways intact under the default maxBodyBytes", async () => {
    await withHub({}, [{}], async (bus) => {
      const body = randomBytes(64 * MiB)
      const digest = sha256(body)
      const res = await bus.request({ method: "POST", path: "/hash", body })
      expect(res.headers.get("x-sha256")).toBe(digest) // what the worker received
      expect(res.body.length).toBe(64 * MiB)
      expect(sha256(res.body)).toBe(digest) // what came back
      const raw = await bus.call(body)
      expect(raw.length).toBe(64 * MiB)
      expect(sha256(raw)).toBe(digest)
      expect(await rejection(bus.call(new Uint8Array(64 * MiB + 1)))).toBeInstanceOf(PayloadTooLargeError)
      expect(text(await bus.call("still fine"))).toBe("still fine")
    })
  }, 30_000)

  test("a response body is a copy that stays valid after its slot is reused", async () => {
    await withHub({ slots: 1 }, [{}], async (bus) => {
      const first = await bus.call(pattern(64, 1))
      await bus.call(pattern(64, 2))
      expect(first).toEqual(pattern(64, 1))
    })
  })
})

describe("heads and status", () => {
  test("a reply's headers record may hold undefined values (`{ etag: cached ? tag : undefined }`): those are absent", async () => {
    const bus = await SlotBus.listen(busName("undef-headers"))
    const worker = await SlotWorker.connect(bus.name, (req) => {
      const a = req.path === "/a"
      return {
        status: a ? 201 : 404,
        headers: { "content-type": a ? "text/plain" : undefined, "x-why": a ? undefined : "none" },
        body: "x",
      }
    })
    try {
      await bus.waitForWorkers(1)
      const a = await bus.request({ path: "/a" })
      expect([a.status, a.headers.get("content-type"), a.headers.has("x-why")]).toEqual([201, "text/plain", false])
      const b = await bus.request({ path: "/b" })
      expect([b.status, b.headers.get("x-why"), b.headers.has("content-type")]).toEqual([404, "none", false])
    } finally {
      await worker.close()
      await bus.close()
    }
  })

  test("method, path and headers reach the worker with header names lower-cased", async () => {
    await withHub({}, [{}], async (bus) => {
      const res = await bus.request({
        method: "PATCH",
        path: "/describe?q=1&r=ü",
        headers: { "X-Mixed-Case": "Value Keeps Case", "content-type": "text/plain" },
        body: "abc",
      })
      expect(res.json()).toEqual({
        kind: "http",
        method: "PATCH",
        path: "/describe?q=1&r=ü",
        headers: { "x-mixed-case": "Value Keeps Case", "content-type": "text/plain" },
        bodyLength: 3,
      })
    })
  })

  test("Latin-1 header values, long values and repeated names survive the round trip as Headers", async () => {
    await withHub({}, [{}], async (bus) => {
      const long = "ä".repeat(500)
      const res = await bus.request({
        path: "/describe",
        headers: [
          ["X-Grusse", "héllo, wörld"],
          ["x-repeat", "one"],
          ["X-Repeat", "two"],
          ["x-long", long],
          ["x-empty", ""],
        ],
      })
      expect(res.json<{ headers: Record<string, string> }>().headers).toEqual({
        "x-grusse": "héllo, wörld",
        "x-repeat": "one, two",
        "x-long": long,
        "x-empty": "",
      })
    })
  })

  test.each([
    ["a name that is not an HTTP token", [["X-Grüße", "v"]]],
    ["a name with a space", [["x a", "v"]]],
    ["a value beyond Latin-1", [["x-a", "héllo ✓"]]],
    ["a value with a line break", [["x-a", "a\r\nx-injected: 1"]]],
  ])("request headers with %s are a TypeError naming the header, and nothing is sent", async (_, headers) => {
    await withHub({}, [{}], async (bus) => {
      const e = await rejection(bus.request({ path: "/echo", headers: headers as [string, string][] }))
      expect(e).toBeInstanceOf(TypeError)
      expect((e as Error).message).toContain(JSON.stringify(headers[0]![0]))
      expect(sentToWorkers(bus)).toBe(0)
    })
  })

  test("a Headers object is accepted as request headers", async () => {
    await withHub({}, [{}], async (bus) => {
      const res = await bus.request({ path: "/describe", headers: new Headers({ "X-From-Headers": "yes" }) })
      expect(res.json<{ headers: Record<string, string> }>().headers).toEqual({ "x-from-headers": "yes" })
    })
  })

  test("the default method is GET and the default path is /", async () => {
    await withHub({}, [{}], async (bus) => {
      const res = await bus.request({ headers: { "x-status": "204" } })
      expect(res.status).toBe(204)
      expect(res.headers.get("x-path")).toBe("/")
    })
  })

  test.each([200, 201, 204, 404, 500, 0, 999])("status %p set by the handler reaches the hub", async (status) => {
    await withHub({}, [{}], async (bus) => {
      const res = await bus.request({ path: "/echo", headers: { "x-status": String(status) }, body: "s" })
      expect(res).toBeInstanceOf(SlotResponse)
      expect(res.status).toBe(status)
      expect(res.text()).toBe("s")
    })
  })

  test("response headers come back lower-cased, Latin-1 intact, repeated names joined", async () => {
    await withHub({}, [{}], async (bus) => {
      const replyHeaders = [
        ["X-Reply", "Ünïcödé"],
        ["set-thing", "a=1"],
        ["Set-Thing", "b=2"],
      ]
      const res = await bus.request({ path: "/echo", headers: { "x-reply-headers": JSON.stringify(replyHeaders) } })
      expect(res.headers.get("x-reply")).toBe("Ünïcödé")
      expect(res.headers.get("set-thing")).toBe("a=1, b=2")
      expect(res.headers.get("x-path")).toBe("/echo")
    })
  })

  test("a status a Web Response cannot carry (99, 700) is a ProtocolError from toResponse(), whole or streamed; 0 is 200", async () => {
    await withHub({}, [{}], async (bus) => {
      for (const status of ["99", "700"]) {
        const headers = { "x-status": status }
        const whole = await bus.request({ path: "/echo", headers }) // as itself, any status of the wire's
        expect(whole.status).toBe(Number(status))
        expect(() => whole.toResponse()).toThrow(ProtocolError)
        const streamed = await bus.request({ path: "/echo", headers }, { stream: true })
        expect(() => streamed.toResponse()).toThrow(ProtocolError)
      }
      expect((await bus.request({ path: "/echo", headers: { "x-status": "0" } })).toResponse().status).toBe(200)
    })
  })

  test("a status outside 0..999 from the handler rejects with RemoteError", async () => {
    await withHub({}, [{}], async (bus) => {
      const e = await rejection(bus.request({ path: "/echo", headers: { "x-status": "1000" } }))
      expect(e).toBeInstanceOf(RemoteError)
      expect((e as Error).message).toContain("status")
    })
  })
})

describe("raw calls and requests", () => {
  test("call() delivers a raw message with no head and resolves with bare bytes", async () => {
    await withHub({}, [{}], async (bus) => {
      const out = await bus.call("?describe")
      expect(out).toBeInstanceOf(Uint8Array)
      expect(JSON.parse(text(out))).toEqual({ kind: "raw", method: "", path: "", headers: {}, bodyLength: 0 })
    })
  })

  test("request() delivers an http message and resolves with a SlotResponse", async () => {
    await withHub({}, [{}], async (bus) => {
      const res = await bus.request({ method: "POST", path: "/describe", body: "?describe" })
      expect(res).toBeInstanceOf(SlotResponse)
      expect(res.json<{ kind: string; bodyLength: number }>()).toMatchObject({ kind: "http", bodyLength: 9 })
    })
  })
})

describe("handler errors", () => {
  test("a handler that throws rejects the request with RemoteError carrying its message", async () => {
    await withHub({}, [{}], async (bus) => {
      const e = await rejection(bus.request({ path: "/fail", headers: { "x-message": "the disk is on fire (ü)" } }))
      expect(e).toBeInstanceOf(RemoteError)
      expect((e as Error).message).toContain("the disk is on fire (ü)")
      expect(bus.stats().errors).toBe(1)
      expect((await bus.request({ path: "/echo", body: "after" })).text()).toBe("after")
    })
  })

  test("a response too big for the slot arena is a PayloadTooLargeError on the hub and the bus stays usable", async () => {
    // arena = align8(maxHeadBytes) + maxBodyBytes, rounded up to a page: 8192 here
    await withHub({ maxBodyBytes: 4096, maxHeadBytes: 4096 }, [{}], async (bus) => {
      const ok = await bus.request({ path: "/large?bytes=8000&seed=5" })
      expect(ok.body).toEqual(pattern(8000, 5))
      const e = await rejection(bus.request({ path: "/large?bytes=9000" }))
      expect(e).toBeInstanceOf(PayloadTooLargeError)
      expect((e as Error).message).toContain("maxBodyBytes")
      const z = await rejection(bus.request({ path: "/zero-copy?bytes=9000" }))
      expect(z).toBeInstanceOf(PayloadTooLargeError)
      expect((await bus.request({ path: "/echo", body: "after" })).text()).toBe("after")
    })
  })
})

describe("string answers", () => {
  test("a string answer arrives as its UTF-8 bytes: multi-byte characters, a lone surrogate as U+FFFD, headers kept", async () => {
    await withHub({}, [{}], async (bus) => {
      const utf8 = (s: string) => new TextEncoder().encode(s)
      const mixed = await bus.request({ path: "/text?a=3&tail=mixed&header=1" })
      expect(mixed.body).toEqual(utf8("aaa\u00e9\u2713\ud83d\ude00"))
      expect(mixed.headers.get("x-text")).toBe("yes")
      expect((await bus.request({ path: "/text?a=1&tail=lone" })).body).toEqual(new Uint8Array([97, 0xef, 0xbf, 0xbd]))
      expect((await bus.request({ path: "/text?a=0" })).body.length).toBe(0)
      const big = await bus.request({ path: "/text?a=40000&tail=check" })
      expect(big.body).toEqual(utf8(`${"a".repeat(40000)}\u2713`))
    })
  })

  test("a string answer of exactly the arena's bytes arrives whole; one byte over (a character cut at the end) is a PayloadTooLargeError with its UTF-8 length", async () => {
    // arena = align8(maxHeadBytes) + maxBodyBytes, rounded up to a page: 8192 here; "✓" is 3 bytes of UTF-8
    await withHub({ maxBodyBytes: 4096, maxHeadBytes: 4096 }, [{}], async (bus) => {
      const fits = await bus.request({ path: "/text?a=8189&tail=check" })
      expect(fits.body.length).toBe(8192)
      expect(fits.text()).toBe(`${"a".repeat(8189)}\u2713`)
      const e = await rejection(bus.request({ path: "/text?a=8190&tail=check" }))
      expect(e).toBeInstanceOf(PayloadTooLargeError)
      expect((e as Error).message).toContain("reply of 8193 body bytes")
      const withHead = await rejection(bus.request({ path: "/text?a=8189&tail=check&header=1" }))
      expect(withHead).toBeInstanceOf(PayloadTooLargeError) // its head takes arena bytes too
      expect((await bus.request({ path: "/echo", body: "after" })).text()).toBe("after")
    })
  })
})

describe("zero-copy replies", () => {
  test.each([0, 1, 4096, 1 * MiB])(
    "req.reply(%p) sends the status, headers and body written into the slot",
    async (size) => {
      await withHub({ maxBodyBytes: 2 * MiB }, [{}], async (bus) => {
        const res = await bus.request({ path: `/zero-copy?bytes=${size}&seed=9` })
        expect(res.status).toBe(201)
        expect(res.headers.get("x-zero-copy")).toBe("yes")
        expect(res.body).toEqual(pattern(size, 9))
      })
    },
  )
})

describe("bad inputs", () => {
  const requests: [string, (bus: SlotBus) => Promise<unknown>, new (...a: never[]) => Error][] = [
    ["a number as call body", (b) => b.call(42 as never), TypeError],
    ["a plain object as call body", (b) => b.call({ length: 1 } as never), TypeError],
    ["an array as request body", (b) => b.request({ body: [1, 2] as never }), TypeError],
    ["a header value with NUL", (b) => b.request({ headers: { "x-a": "b\0c" } }), TypeError],
    ["a header name with NUL", (b) => b.request({ headers: { "x\0a": "b" } }), TypeError],
    ["an empty header name", (b) => b.request({ headers: [["", "b"]] }), TypeError],
    ["a non-string header value", (b) => b.request({ headers: { "x-a": 1 as never } }), TypeError],
    ["a method with a space", (b) => b.request({ method: "GE T" }), TypeError],
    ["a method with NUL", (b) => b.request({ method: "GET\0" }), TypeError],
    ["a non-string method", (b) => b.request({ method: 7 as never }), TypeError],
    ["a path with NUL", (b) => b.request({ path: "/a\0b" }), TypeError],
    ["a path that names a host (@)", (b) => b.request({ path: "@evil.example/steal" }), TypeError],
    ["a path without its /", (b) => b.request({ path: "echo" }), TypeError],
    ["an empty path", (b) => b.request({ path: "" }), TypeError],
    ["a negative timeoutMs", (b) => b.request({}, { timeoutMs: -1 }), RangeError],
    ["a fractional timeoutMs", (b) => b.request({}, { timeoutMs: 1.5 } as RequestOptions), RangeError],
    ["a NaN timeoutMs", (b) => b.call("x", { timeoutMs: NaN }), RangeError],
    ["a body over maxBodyBytes", (b) => b.call(new Uint8Array(4097)), PayloadTooLargeError],
    ["a head over maxHeadBytes", (b) => b.request({ headers: { "x-big": "h".repeat(300) } }), PayloadTooLargeError],
    ["a head over maxHeadBytes in UTF-8 bytes", (b) => b.request({ path: "/" + "€".repeat(90) }), PayloadTooLargeError],
  ]

  test.each(requests)("%s rejects with a typed error and leaves the bus usable", async (_what, send, type) => {
    await withHub({ maxBodyBytes: 4096, maxHeadBytes: 256 }, [{}], async (bus) => {
      const before = sentToWorkers(bus)
      const e = await rejection(send(bus))
      expect(e).toBeInstanceOf(type)
      expect(sentToWorkers(bus)).toBe(before)
      expect(text(await bus.call("ok"))).toBe("ok")
      expect((await bus.request({ path: "/echo", body: "ok" } satisfies SlotRequestInit)).text()).toBe("ok")
    })
  })

  const names: [string, string][] = [
    ["empty", ""],
    ["with a space", "a b"],
    ["with a slash", "a/b"],
    ["with non-ASCII", "büs"],
    ["65 characters long", "x".repeat(65)],
    ["with an embedded NUL", "ok\0tail"],
  ]

  test.each(names)("a bus name %s is refused with TypeError by listen and connect", async (_what, name) => {
    const listening = SlotBus.listen(name)
    listening.then(
      (bus) => bus.close(),
      () => {},
    ) // never leave a wrongly accepted hub listening
    expect(await rejection(listening)).toBeInstanceOf(TypeError)
    const connecting = SlotWorker.connect(name, () => "x")
    connecting.then(
      (w) => w.close(),
      () => {},
    )
    expect(await rejection(connecting)).toBeInstanceOf(TypeError)
  })

  test("a 64-character name made of every allowed character class is accepted", async () => {
    const name = `A-z_0.9-${process.pid}-`.padEnd(64, "x")
    const bus = await SlotBus.listen(name)
    await bus.close()
  })

  const options: [string, ListenOptions, new (...a: never[]) => Error][] = [
    ["slots: 0", { slots: 0 }, RangeError],
    ["slots: 5000", { slots: 5000 }, RangeError],
    ["slots: -1", { slots: -1 }, RangeError],
    ["slots: 1.5", { slots: 1.5 }, RangeError],
    ['idle: "bogus"', { idle: "bogus" as never }, TypeError],
    ["idle with negative spinMicros", { idle: { spinMicros: -1, parkAfterMs: 1 } }, RangeError],
    ["idle with NaN parkAfterMs", { idle: { spinMicros: 1, parkAfterMs: NaN } }, RangeError],
    ["idle with a string spinMicros", { idle: { spinMicros: "5" as never, parkAfterMs: 1 } }, TypeError],
    ["idle: null", { idle: null as never }, TypeError],
    ["timeoutMs: -1", { timeoutMs: -1 }, RangeError],
    ["queue: -1", { queue: -1 }, RangeError],
    ["maxBodyBytes: -5", { maxBodyBytes: -5 }, RangeError],
    ["maxBodyBytes: 2^32", { maxBodyBytes: 2 ** 32 }, RangeError],
    ["maxHeadBytes: 1.5", { maxHeadBytes: 1.5 }, RangeError],
    ["maxHeldBodyBytes under maxBodyBytes", { maxBodyBytes: 2048, maxHeldBodyBytes: 1024 }, RangeError],
    ['maxHeldBodyBytes: "1"', { maxHeldBodyBytes: "1" as never }, TypeError],
    ["9 allowUids", { allowUids: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, RangeError],
    ["a negative allowUid", { allowUids: [-1] }, RangeError],
  ]

  test.each(options)(
    "listen with %s rejects with a typed error and leaves the name free",
    async (_what, opts, type) => {
      const name = busName("opt")
      expect(await rejection(SlotBus.listen(name, opts))).toBeInstanceOf(type)
      const bus = await SlotBus.listen(name)
      await bus.close()
    },
  )

  test("a second hub under a taken name rejects with NameInUseError and the first keeps serving", async () => {
    await withHub({}, [{}], async (bus) => {
      expect(await rejection(SlotBus.listen(bus.name))).toBeInstanceOf(NameInUseError)
      expect(text(await bus.call("still mine"))).toBe("still mine")
    })
  })

  // a bus "topic.<x>" and a topic "<x>" were one socket file: the second to open got a misleading error (a member's
  // "malformed hello", a hub "already listening", a worker of "another version of the wire protocol")
  test("a bus name that starts as a topic's or an election's file (topic., fronts., bridge.) is a TypeError on both sides", async () => {
    const { Topic } = await import("../../../src/events/index.ts")
    const x = busName("ev")
    const topic = await Topic.open(x)
    try {
      for (const name of [`topic.${x}`, `fronts.${x}`, `bridge.${x}`]) {
        const listen = await rejection(SlotBus.listen(name))
        expect(listen).toBeInstanceOf(TypeError)
        expect((listen as Error).message).toContain(`bus name "${name}" starts with`)
        expect(await rejection(SlotWorker.connect(name, () => "x"))).toBeInstanceOf(TypeError)
      }
      // the topic is untouched, and a name that only contains those words is a bus like any other
      expect(topic.isKeeper).toBe(true)
      await using bus = await SlotBus.listen(`my.topic.${x}`)
      expect(bus.name).toBe(`my.topic.${x}`)
    } finally {
      topic.close()
    }
  })

  test("connect rejects a handler that is not a function, a bogus idle, and a missing hub with typed errors", async () => {
    const name = busName("conn")
    expect(await rejection(SlotWorker.connect(name, "nope" as never))).toBeInstanceOf(TypeError)
    expect(await rejection(SlotWorker.connect(name, () => "x", { idle: "bogus" as never }))).toBeInstanceOf(TypeError)
    expect(await rejection(SlotWorker.connect(name, () => "x"))).toBeInstanceOf(HubNotFoundError)
  })
})
