import { afterEach, describe, expect, test } from "bun:test"
import { bunChild, busName, type Child, rejection, sentToWorkers, stopAll, withHub } from "../../support/helpers.ts"
import {
  PayloadTooLargeError,
  ProtocolError,
  RemoteError,
  SlotBus,
  SlotWorker,
  TimeoutError,
} from "../../../src/index.ts"

afterEach(stopAll)
const children: Child[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})

/** A bus with one test/support/core/api-worker.ts process connected. */
async function withApiWorker(flags: string[], fn: (bus: SlotBus, worker: Child) => Promise<void>) {
  const bus = await SlotBus.listen(busName("api"))
  try {
    const worker = bunChild("core/api-worker.ts", [bus.name, ...flags])
    children.push(worker)
    await worker.waitLine(/^ready$/)
    await bus.waitForWorkers(1)
    await fn(bus, worker)
  } finally {
    await bus.close({ drain: false })
  }
}

describe("waitForWorkers", () => {
  test("takes { timeoutMs } and still takes the old positional timeout", async () => {
    await using bus = await SlotBus.listen(busName("wait"))
    for (const e of [
      await rejection(bus.waitForWorkers(1, { timeoutMs: 20 })),
      await rejection(bus.waitForWorkers(2, 20)),
    ]) {
      expect(e).toBeInstanceOf(TimeoutError)
      expect((e as Error).message).toContain(`connected to "${bus.name}"`)
    }
  })

  test("rejects with the signal's reason when its signal aborts, and unknown options are a TypeError", async () => {
    await using bus = await SlotBus.listen(busName("wait"))
    const ac = new AbortController()
    const waiting = rejection(bus.waitForWorkers(1, { timeoutMs: 0, signal: ac.signal }))
    ac.abort(new Error("stop waiting"))
    expect(((await waiting) as Error).message).toBe("stop waiting")
    const bad = await rejection(bus.waitForWorkers(1, { timeout: 5 } as never))
    expect(bad).toBeInstanceOf(TypeError)
    expect((bad as Error).message).toContain('"timeout"')
  })

  test("a request that times out with no worker connected says 0 workers are connected to the bus", async () => {
    await using bus = await SlotBus.listen(busName("none"))
    const e = await rejection(bus.call("anyone?", { timeoutMs: 30 }))
    expect(e).toBeInstanceOf(TimeoutError)
    expect((e as Error).message).toContain(`0 workers connected to "${bus.name}"`)
  })
})

describe("unknown options", () => {
  test.each([
    ["listen", () => SlotBus.listen(busName("opt"), { slot: 4 } as never), '"slot"'],
    ["connect", () => SlotWorker.connect(busName("opt"), () => null, { reconect: true } as never), '"reconect"'],
  ])("%s rejects an unknown option name with a TypeError naming it", async (_, call, named) => {
    const e = await rejection(call())
    expect(e).toBeInstanceOf(TypeError)
    expect((e as Error).message).toContain(named)
  })

  test("request and call reject an unknown option name with a TypeError naming it, and send nothing", async () => {
    await using bus = await SlotBus.listen(busName("opt"))
    for (const e of [
      await rejection(bus.request({ path: "/" }, { timeout: 5 } as never)),
      await rejection(bus.call("x", { borow: true } as never)),
    ]) {
      expect(e).toBeInstanceOf(TypeError)
      expect((e as Error).message).toMatch(/unknown option "(timeout|borow)"/)
    }
    expect(sentToWorkers(bus)).toBe(0)
  })
})

describe("handler replies", () => {
  test.each([
    ["/number", "returned a number (42)"],
    ["/object", "an object without status or body"],
  ])(
    "a handler returning an unsupported value (%s) is a RemoteError saying so, not an empty 200",
    async (path, says) => {
      await withApiWorker([], async (bus) => {
        const e = await rejection(bus.request({ path }))
        expect(e).toBeInstanceOf(RemoteError)
        expect((e as RemoteError).message).toContain(says)
        expect((e as RemoteError).remoteName).toBe("TypeError")
      })
    },
  )

  test("a RemoteError carries the remote error's name and stack", async () => {
    await withApiWorker([], async (bus) => {
      const e = (await rejection(bus.request({ path: "/type-error" }))) as RemoteError
      expect(e).toBeInstanceOf(RemoteError)
      expect(e.message).toBe("TypeError: a type went wrong")
      expect(e.remoteName).toBe("TypeError")
      expect(e.remoteStack).toContain("a type went wrong")
      expect(e.remoteStack).toContain("api-worker.ts")
    })
  })

  test("a handler may return a Response: status, headers and every set-cookie arrive as Headers", async () => {
    await withApiWorker([], async (bus) => {
      const res = await bus.request({ path: "/response" })
      expect(res.status).toBe(201)
      expect(res.headers).toBeInstanceOf(Headers)
      expect(res.headers.get("x-worker")).toBe("api")
      expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"])
      expect(res.text()).toBe("from a Response")
    })
  })

  test("a handler may return a Blob, or a reply whose body is a Blob", async () => {
    await withApiWorker([], async (bus) => {
      const blob = await bus.request({ path: "/blob" })
      expect([blob.status, blob.text()]).toEqual([200, "blob body"])
      expect(blob.headers.get("content-type")).toStartWith("text/plain")
      const reply = await bus.request({ path: "/reply-blob" })
      expect([reply.status, reply.text()]).toEqual([202, "in a reply"])
    })
  })
})

describe("bodies", () => {
  test("any ArrayBufferView, a Blob or a string is a body", async () => {
    await withHub({}, [{}], async (bus) => {
      const floats = new Float64Array([1.5, -2])
      expect(await bus.call(floats)).toEqual(new Uint8Array(floats.buffer))
      const view = new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2)
      expect(await bus.call(view)).toEqual(new Uint8Array([8, 7]))
      expect(new TextDecoder().decode(await bus.call(new Blob(["a ", new Uint8Array([98])])))).toBe("a b")
      expect((await bus.request({ method: "POST", path: "/echo", body: new Blob(["blob"]) })).text()).toBe("blob")
      expect((await bus.request({ method: "POST", path: "/echo", body: "ß" })).body).toEqual(
        new Uint8Array([0xc3, 0x9f]),
      )
    })
  })

  test("json() is typed unknown unless the caller names a type", async () => {
    await withHub({}, [{}], async (bus) => {
      const res = await bus.request({ method: "POST", path: "/echo", body: '{"n":1}' })
      const v = res.json()
      // @ts-expect-error: unknown until narrowed
      v.n
      expect(res.json<{ n: number }>().n).toBe(1)
    })
  })

  test("a reply too large for the hub's slots is a PayloadTooLargeError on the hub", async () => {
    await withHub({ maxBodyBytes: 4096, maxHeadBytes: 1024 }, [{}], async (bus) => {
      const e = await rejection(bus.request({ path: "/large?bytes=100000" }))
      expect(e).toBeInstanceOf(PayloadTooLargeError)
      expect((e as Error).message).toContain("raise maxBodyBytes")
    })
  })
})

describe("Request and Response", () => {
  test("bus.fetch hands a Web Request to the worker and answers with a Response", async () => {
    await withApiWorker([], async (bus) => {
      const res = await bus.fetch(new Request("http://localhost:3000/response"))
      expect(res).toBeInstanceOf(Response)
      expect(res.status).toBe(201)
      expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"])
      expect(await res.text()).toBe("from a Response")
      const echo = await bus.fetch(new Request("http://localhost/echo?x=1", { method: "POST", body: "posted" }))
      expect(await echo.text()).toBe("posted")
    })
  })

  test("bus.fetch in a Bun.serve route: one line from an HTTP client to a fetch-mode worker and back", async () => {
    await withApiWorker(["--fetch"], async (bus) => {
      using server = Bun.serve({ port: 0, fetch: (req) => bus.fetch(req) })
      const res = await fetch(`${server.url}describe?q=1`, {
        method: "PUT",
        headers: { "x-mine": "yes" },
        body: "hello",
      })
      const seen = (await res.json()) as { url: string; method: string; headers: Record<string, string>; body: string }
      expect(seen).toMatchObject({ url: `http://${bus.name}/describe?q=1`, method: "PUT", body: "hello" })
      expect(seen.headers["x-mine"]).toBe("yes")
      const cookies = await fetch(`${server.url}response`)
      expect(cookies.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"])
      // the worker's Response was all there when its handler returned: it came whole, sent with its length
      expect(cookies.headers.get("content-length")).toBe(String("from a Response".length))
      expect(cookies.headers.get("transfer-encoding")).toBeNull()
      expect(await cookies.text()).toBe("from a Response")
    })
  })
})

describe("bus.fetch's Response is made from the slot", () => {
  test("held answers stay intact while their slots serve hundreds of later requests", async () => {
    await withApiWorker([], async (bus) => {
      const body = (i: number, size: number) => new Uint8Array(size).map((_, j) => (i * 31 + j * 7) & 0xff)
      const held: Response[] = []
      for (let i = 0; i < 64; i++)
        held.push(await bus.fetch(new Request("http://x/echo", { method: "POST", body: body(i, 16384 + i) })))
      await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          bus
            .fetch(new Request("http://x/echo", { method: "POST", body: body(1000 + i, 20000) }))
            .then((r) => r.arrayBuffer()),
        ),
      )
      for (let i = 0; i < held.length; i++)
        expect(new Uint8Array(await held[i]!.arrayBuffer())).toEqual(body(i, 16384 + i))
    })
  })

  test("a status a Response cannot have rejects that fetch with a ProtocolError naming it; 204 and 304 come without a body", async () => {
    await withApiWorker([], async (bus) => {
      for (const status of [99, 600, 999]) {
        const e = await rejection(bus.fetch(new Request(`http://x/status/${status}`)))
        expect(e).toBeInstanceOf(ProtocolError)
        expect((e as Error).message).toContain(`status ${status}`)
      }
      for (const status of [204, 304]) {
        const res = await bus.fetch(new Request(`http://x/status/${status}`))
        expect(res.status).toBe(status)
        expect(await res.text()).toBe("")
      }
      expect(await (await bus.fetch(new Request("http://x/status/418"))).text()).toBe("with that status")
    })
  })
})

describe("cancellation reaches the worker", () => {
  test("req.signal aborts in the worker when the hub's caller aborts after the worker claimed the request", async () => {
    await withApiWorker([], async (bus, worker) => {
      const ac = new AbortController()
      const pending = rejection(bus.request({ path: "/wait-abort" }, { signal: ac.signal }))
      await worker.waitLine(/^waiting \/wait-abort$/) // the handler runs: the slot is claimed
      ac.abort(new Error("caller gave up"))
      expect(((await pending) as Error).message).toBe("caller gave up")
      await worker.waitLine(/^aborted \/wait-abort AbortError$/)
      expect((await bus.request({ method: "POST", path: "/echo", body: "still serving" })).text()).toBe("still serving")
    })
  })

  test("req.signal aborts in the worker when the hub's request times out, parked worker included", async () => {
    await withApiWorker([], async (bus, worker) => {
      const pending = rejection(bus.request({ path: "/wait-timeout" }, { timeoutMs: 300 }))
      await worker.waitLine(/^waiting \/wait-timeout$/)
      expect(await pending).toBeInstanceOf(TimeoutError)
      await worker.waitLine(/^aborted \/wait-timeout AbortError$/)
    })
  })

  test("req.signal aborts in the worker when the hub closes while the handler runs", async () => {
    const bus = await SlotBus.listen(busName("api"))
    const worker = bunChild("core/api-worker.ts", [bus.name])
    children.push(worker)
    try {
      await worker.waitLine(/^ready$/)
      await bus.waitForWorkers(1)
      const pending = rejection(bus.request({ path: "/wait-close" }, { timeoutMs: 0 }))
      await worker.waitLine(/^waiting \/wait-close$/)
      await bus.close({ drain: false })
      await pending
      await worker.waitLine(/^aborted \/wait-close AbortError$/)
    } finally {
      await bus.close({ drain: false })
    }
  })

  test("a fetch-mode handler's Request.signal aborts too, and other requests in flight are left alone", async () => {
    await withApiWorker(["--fetch"], async (bus, worker) => {
      const ac = new AbortController()
      const kept = bus.request({ path: "/wait-kept" }, { timeoutMs: 0 })
      await worker.waitLine(/^waiting \/wait-kept$/)
      const pending = rejection(bus.fetch(new Request("http://x/wait-fetch", { signal: ac.signal })))
      await worker.waitLine(/^waiting \/wait-fetch$/)
      ac.abort()
      await pending
      await worker.waitLine(/^aborted \/wait-fetch AbortError$/)
      expect(worker.lines.some((l) => l.startsWith("aborted /wait-kept"))).toBe(false)
      kept.catch(() => {})
    })
  })
})
