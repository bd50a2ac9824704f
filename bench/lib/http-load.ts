// The HTTP load generator the HTTP benches share: wrk when it is installed (apt-get install wrk), else an in-repo
// keep-alive fetch client. Each call loads one URL with `clients` connections for `seconds`, or with `ids` the URLs
// <url>/0 … <url>/<ids − 1> in turn (wrk through ids.lua).
import { join } from "node:path"
import { run } from "./child.ts"
import { selfCpuSeconds } from "./cpu.ts"
import { Samples } from "./samples.ts"
import { findTool } from "./tools.ts"

export interface HttpCell {
  rps: number
  p50: number
  p99: number
  /** Requests answered in the measured time. */
  count: number
  /** Connect, read and write errors and timeouts (wrk's "Socket errors"; the fetch client throws instead). */
  errors: number
  /** CPU seconds the load generator used for it (wrk's process, or this process while the fetch client ran). */
  clientCpuS: number
}

export type HttpLoad = (url: string, clients: number, seconds: number, ids?: number) => Promise<HttpCell>

export const hasWrk = (): boolean => findTool("wrk") !== null

/** A --client option's value checked: "wrk" or "fetch", or what is wrong with it. */
export function clientOption(v: string): "wrk" | "fetch" | { error: string } {
  if (v !== "wrk" && v !== "fetch") return { error: `--client takes wrk or fetch, got ${v}` }
  if (v === "wrk" && !hasWrk()) return { error: "--client wrk: wrk is not installed (apt-get install -y wrk)" }
  return v
}

/** The load generator `client` names ("wrk" or "fetch"; wrk when installed if none is named). */
export function httpLoad(client?: string): HttpLoad {
  const c = client ?? (hasWrk() ? "wrk" : "fetch")
  if (c === "fetch") return loadFetch
  if (c !== "wrk") throw new Error(`--client must be wrk or fetch, got ${c}`)
  if (!hasWrk()) throw new Error("wrk is not installed (apt-get install wrk), use --client=fetch")
  return loadWrk
}

function unitToMicros(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim())
  if (!m) return NaN
  return Number(m[1]) * (m[2] === "us" ? 1 : m[2] === "ms" ? 1000 : 1e6)
}

async function loadWrk(url: string, clients: number, seconds: number, ids?: number): Promise<HttpCell> {
  const cmd = [findTool("wrk")!, "-t1", `-c${clients}`, `-d${seconds}s`, "--latency"]
  if (ids === undefined) cmd.push(url)
  else cmd.push("-s", join(import.meta.dir, "ids.lua"), url, "--", String(ids))
  const { stdout: out, cpuS } = await run(cmd)
  const pct = (n: string) => unitToMicros(new RegExp(`^\\s*${n}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "")
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  if (!rps || /Non-2xx/.test(out)) throw new Error(`wrk failed against ${url}:\n${out}`)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const errors = socket ? socket.slice(1).reduce((n, v) => n + Number(v), 0) : 0
  const count = Number(/(\d+) requests in/.exec(out)?.[1])
  return { rps, p50: pct("50"), p99: pct("99"), count, errors, clientCpuS: cpuS }
}

async function loadFetch(url: string, clients: number, seconds: number, ids?: number): Promise<HttpCell> {
  const h = new Samples()
  const cpu0 = selfCpuSeconds()
  const end = performance.now() + seconds * 1000
  let n = 0
  let sent = 0
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const t = performance.now()
        const res = await fetch(ids === undefined ? url : `${url}/${sent++ % ids}`)
        await res.arrayBuffer()
        if (res.status !== 200) throw new Error(`${url} answered ${res.status}`)
        h.record((performance.now() - t) * 1000)
        n++
      }
    }),
  )
  const clientCpuS = selfCpuSeconds() - cpu0
  return { rps: n / seconds, p50: h.percentile(50), p99: h.percentile(99), count: n, errors: 0, clientCpuS }
}
