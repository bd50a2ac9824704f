import { expect, test } from "bun:test"
import { main } from "../../bench/stdio/cli.ts"
import { usageErrors } from "../support/bench/bench.ts"

usageErrors("stdio", main, [["--only", "nope"], ["--time", "5"], ["--time"], ["--what"], ["--rounds", "0"]])

test("slotbus bench stdio --only echo --time 60 --json measures every echo line", async () => {
  const log = console.log
  const lines: string[] = []
  console.log = (s: string) => void lines.push(s)
  try {
    expect(await main(["--only", "echo", "--time", "60", "--rounds", "2", "--json"])).toBe(0)
  } finally {
    console.log = log
  }
  const rows = lines.map((l) => JSON.parse(l))
  expect(rows.map((r) => `${r.method}@${r.inflight}`)).toEqual([
    "direct Bun.spawn pipe@1",
    "direct Bun.spawn pipe@32",
    "stdio bus, 1 instance@1",
    "stdio bus, 1 instance@32",
    "stdio bus, 2 instances@1",
    "stdio bus, 2 instances@32",
  ])
  for (const r of rows) {
    expect(r.count).toBeGreaterThan(0)
    expect(r.workerCpuUsPerMsg).toBeGreaterThan(0)
  }
}, 30_000)
