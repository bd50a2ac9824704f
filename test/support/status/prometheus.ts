// Reading GET /metrics as Prometheus does, for the metrics tests: `promtool check metrics`, one sample of a scrape,
// and a real Prometheus server scraping targets, queried back through its HTTP API.
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { spawn, type Child } from "../helpers.ts"

/** `promtool check metrics` of `text`: its exit code and what it printed (nothing, for a clean exposition). */
export async function promtool(text: string) {
  const check = Bun.spawn(["promtool", "check", "metrics"], { stdin: new Blob([text]), stdout: "pipe", stderr: "pipe" })
  const [out, err, code] = await Promise.all([
    new Response(check.stdout).text(),
    new Response(check.stderr).text(),
    check.exited,
  ])
  return { code, out, err }
}

/** The value of the sample `series` (name and labels as written) in a scrape, or undefined. */
export const sample = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

export function freePort(): number {
  const held = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } })
  const port = held.port
  held.stop(true)
  return port
}

export type Series = { metric: Record<string, string>; value: [number, string] }

/** A Prometheus server on a free port with `config` (a prometheus.yml's text), its data in `dir`. */
export function startPrometheus(dir: string, config: string) {
  const file = join(dir, "prometheus.yml")
  writeFileSync(file, config)
  const web = `127.0.0.1:${freePort()}`
  const server: Child = spawn([
    "prometheus",
    `--config.file=${file}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=${web}`,
    "--log.level=warn",
  ])
  const query = async (q: string): Promise<Series[]> => {
    try {
      const res = await fetch(`http://${web}/api/v1/query?query=${encodeURIComponent(q)}`)
      const body = (await res.json()) as { status: string; data: { result: Series[] } }
      return body.status === "success" ? body.data.result : []
    } catch {
      return [] // not listening yet
    }
  }
  /** The one series' value, NaN when there is not exactly one. */
  const value = (s: Series[]) => (s.length === 1 ? Number(s[0]!.value[1]) : Number.NaN)
  return { server, query, value, stop: () => server.stop() }
}
