// Headless Chromium driven over the DevTools protocol (CDP), for pages that stay open: an EventSource never lets
// `--virtual-time-budget` or `--dump-dom` finish, so the tests navigate, poll the DOM and take screenshots over
// CDP instead. Chromium runs in a session of its own (setsid), so close() ends it and every helper process it
// started, also when the test failed; its profile lives in a temp dir that close() removes.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawn, until, type Child } from "./helpers.ts"

const COMMAND_TIMEOUT_MS = 15_000

type Pending = {
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  method: string
  timer: ReturnType<typeof setTimeout>
}

/** One WebSocket to the browser; pages are flat sessions on it. */
class Cdp {
  private next = 1
  private readonly pending = new Map<number, Pending>()

  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data)) as { id?: number; result?: unknown; error?: { message: string } }
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id)
      if (!p) return // an event: the tests poll instead of listening
      this.pending.delete(msg.id!)
      clearTimeout(p.timer)
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`))
      else p.resolve(msg.result)
    }
    ws.onclose = () => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer)
        p.reject(new Error(`${p.method}: the DevTools connection closed`))
      }
      this.pending.clear()
    }
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url)
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve()
      ws.onerror = () => reject(new Error(`cannot connect to DevTools at ${url}`))
    })
    return new Cdp(ws)
  }

  send<T>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> {
    const id = this.next++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${method}: no answer from the browser within ${COMMAND_TIMEOUT_MS} ms`))
      }, COMMAND_TIMEOUT_MS)
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, method, timer })
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }))
    })
  }

  close() {
    this.ws.close()
  }
}

export class Page {
  constructor(
    private readonly cdp: Cdp,
    private readonly targetId: string,
    private readonly sessionId: string,
  ) {}

  /** Closes the tab (its EventSource with it). */
  async close(): Promise<void> {
    await this.cdp.send("Target.closeTarget", { targetId: this.targetId }).catch(() => {}) // the browser may be gone
  }

  async navigate(url: string): Promise<void> {
    const r = await this.cdp.send<{ errorText?: string }>("Page.navigate", { url }, this.sessionId)
    if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`)
  }

  /** The value of a JavaScript expression in the page (JSON-serializable). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.cdp.send<{ result: { value: T }; exceptionDetails?: { text: string } }>(
      "Runtime.evaluate",
      { expression, returnByValue: true },
      this.sessionId,
    )
    if (r.exceptionDetails) throw new Error(`evaluating ${expression}: ${r.exceptionDetails.text}`)
    return r.result.value
  }

  /**
   * Polls the expression until `accept` takes its value; resolves with that value. An expression that throws
   * (the document still loading: no body yet) counts as not yet.
   */
  async waitFor<T>(expression: string, accept: (v: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
    let last: { value?: T; error?: string } = { error: "not evaluated yet" }
    try {
      await until(
        async () => {
          try {
            last = { value: await this.evaluate<T>(expression) }
          } catch (e) {
            last = { error: (e as Error).message }
            return false
          }
          return accept(last.value as T)
        },
        what,
        timeoutMs,
        100,
      )
    } catch (e) {
      throw new Error(`${(e as Error).message}; last: ${JSON.stringify(last).slice(0, 3000)}`)
    }
    return last.value as T
  }

  /** A PNG of the whole page, not only the viewport. */
  async screenshot(): Promise<Uint8Array> {
    const m = await this.cdp.send<{ cssContentSize: { width: number; height: number } }>(
      "Page.getLayoutMetrics",
      {},
      this.sessionId,
    )
    const clip = { x: 0, y: 0, width: m.cssContentSize.width, height: m.cssContentSize.height, scale: 1 }
    const r = await this.cdp.send<{ data: string }>(
      "Page.captureScreenshot",
      { format: "png", clip, captureBeyondViewport: true },
      this.sessionId,
    )
    return Buffer.from(r.data, "base64")
  }
}

export class Browser {
  private constructor(
    private readonly proc: Child,
    private readonly cdp: Cdp,
    /** The profile directory: also how close() recognizes the browser's processes. */
    readonly dataDir: string,
  ) {}

  /** Starts headless Chromium and connects to it; on any failure it is ended again before this rejects. */
  static async launch(): Promise<Browser> {
    const dataDir = mkdtempSync(join(tmpdir(), "slotbus-chromium-"))
    const proc = spawn([
      "setsid",
      "chromium",
      "--headless=new",
      "--remote-debugging-port=0",
      `--user-data-dir=${dataDir}`,
      "--no-sandbox", // the tests run as root in CI, where Chromium's sandbox refuses to start
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-gpu",
      "--disable-extensions",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--hide-scrollbars",
      "--window-size=1400,900",
      "about:blank",
    ])
    let cdp: Cdp | undefined
    try {
      let ws = ""
      await until(
        () => {
          ws = proc.stderr.match(/DevTools listening on (ws:\/\/\S+)/)?.[1] ?? ""
          if (!ws && !proc.running) throw new Error(`chromium exited before listening:\n${proc.stderr}`)
          return ws !== ""
        },
        "chromium says where DevTools listens",
        30_000,
        50,
      )
      cdp = await Cdp.connect(ws)
      return new Browser(proc, cdp, dataDir)
    } catch (e) {
      cdp?.close()
      await endProcesses(proc, dataDir)
      throw e
    }
  }

  /** A new tab (1400×900 CSS pixels). */
  async newPage(): Promise<Page> {
    const { targetId } = await this.cdp.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" })
    const { sessionId } = await this.cdp.send<{ sessionId: string }>("Target.attachToTarget", {
      targetId,
      flatten: true,
    })
    const page = new Page(this.cdp, targetId, sessionId)
    await this.cdp.send(
      "Emulation.setDeviceMetricsOverride",
      { width: 1400, height: 900, deviceScaleFactor: 1, mobile: false },
      sessionId,
    )
    return page
  }

  /** Closes the browser, ends every process of its session, removes its profile. */
  async close(): Promise<void> {
    await this.cdp.send("Browser.close").catch(() => {}) // it may be gone already
    this.cdp.close()
    await endProcesses(this.proc, this.dataDir)
  }

  /** Pids of processes still running with this browser's profile on their command line. */
  static processesOf(dataDir: string): number[] {
    const found: number[] = []
    for (const p of readdirSync("/proc")) {
      if (!/^\d+$/.test(p)) continue
      try {
        const stat = readFileSync(`/proc/${p}/stat`, "utf8")
        if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue // a zombie: exited, not yet reaped
        if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(dataDir)) found.push(Number(p))
      } catch {} // exited while we looked
    }
    return found
  }
}

/** The browser exits on Browser.close; whatever of its session is left after a moment is killed. */
async function endProcesses(proc: Child, dataDir: string) {
  const gone = await until(() => !proc.running, "chromium exits", 5000, 50).then(
    () => true,
    () => false,
  )
  if (!gone) proc.signal("SIGTERM")
  try {
    process.kill(-proc.pid, "SIGKILL") // its session (setsid made it the group leader): helpers that outlived it
  } catch {} // the group is empty
  for (const pid of Browser.processesOf(dataDir))
    try {
      process.kill(pid, "SIGKILL")
    } catch {}
  await proc.kill()
  await until(() => Browser.processesOf(dataDir).length === 0, "chromium's processes are gone", 10_000, 50).catch(
    () => {},
  )
  rmSync(dataDir, { recursive: true, force: true })
}
