// How libslotbus is found and loaded: lazily, on first listen/connect, with every failure a NativeLibraryError
// that says what it found and what to do; and embedded by `bun build --compile`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { ABI_VERSION } from "../../src/native/ffi.ts"
import { detectPlatform, libraryFile } from "../../src/native/lib-path.ts"
import { REPO, run } from "../support/helpers.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

let dir: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slotbus-loading-"))
  mkdirSync(join(dir, "node_modules"))
  symlinkSync(REPO, join(dir, "node_modules", "slotbus"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Runs a script in a fresh bun process in `dir`, with `env` added; returns its exit code and output. */
async function runScript(script: string, env: Record<string, string> = {}) {
  const file = join(dir, `script-${Math.random().toString(36).slice(2)}.ts`)
  writeFileSync(file, script)
  const r = await run([process.execPath, file], { cwd: dir, env: { ...process.env, ...env } })
  return { code: r.code, out: r.stdout + r.stderr }
}

// Importing never loads the library; listen() does, and its failure is catchable and typed.
const probe = `
import { SlotBus, NativeLibraryError } from "slotbus"
try {
  await SlotBus.listen("loading-probe-" + process.pid)
  console.log("LOADED")
} catch (e) {
  console.log(e instanceof NativeLibraryError ? "NativeLibraryError: " + e.message : "OTHER: " + e)
}
process.exit(0)
`

describe("a library that cannot be used is a NativeLibraryError from listen/connect, not from import", () => {
  test("SLOTBUS_LIB naming a missing file says so and how to fix it", async () => {
    const r = await runScript(probe, { SLOTBUS_LIB: join(dir, "nowhere.so") })
    expect(r.out).toContain("NativeLibraryError: SLOTBUS_LIB is set to")
    expect(r.out).toContain("nowhere.so")
  })

  test("a file that is not an ELF library names the file and says to rebuild", async () => {
    writeFileSync(join(dir, "text.so"), "this is not a shared library\n")
    const r = await runScript(probe, { SLOTBUS_LIB: join(dir, "text.so") })
    expect(r.out).toContain("NativeLibraryError:")
    expect(r.out).toContain("text.so could not be loaded as libslotbus")
    expect(r.out).toContain("npm run build")
  })

  test("a real library that is not libslotbus is refused for its missing symbols", async () => {
    const libm = [
      "/lib/x86_64-linux-gnu/libm.so.6",
      "/usr/lib/x86_64-linux-gnu/libm.so.6",
      "/lib/aarch64-linux-gnu/libm.so.6",
    ].find((p) => Bun.file(p).size > 0)
    expect(libm).toBeDefined()
    const r = await runScript(probe, { SLOTBUS_LIB: libm! })
    expect(r.out).toContain("could not be loaded as libslotbus")
  })

  test("a libslotbus of another ABI version is refused with both versions named", async () => {
    const bin = await zigBuild("lib-abi0", { prefix: join(dir, "zig-out") })
    const lib = join(bin, "..", "lib", "libslotbus-abi0.so")
    const r = await runScript(probe, { SLOTBUS_LIB: lib })
    expect(r.out).toContain(`has ABI version 0; this slotbus needs ${ABI_VERSION}`)
  }, 180_000)

  test("a library refused by the ABI check leaves no lease or topic functions behind; the next open fails alike", async () => {
    const bin = await zigBuild("lib-abi0", { prefix: join(dir, "zig-out") })
    const script = `
import { leaseNative, loadNative, topicNative } from "${REPO}/src/native/ffi.ts"
import { Contest } from "${REPO}/src/leases/index.ts"
import { Topic } from "${REPO}/src/events/index.ts"
const used = (f: () => unknown) => { try { f(); return "callable" } catch (e) { return e.name } }
const first = await loadNative().then(() => "loaded", (e) => e.name)
console.log(first, used(() => leaseNative.sbl_open), used(() => topicNative.sb_topic_open))
for (const open of [() => Topic.open("loading-topic-" + process.pid), () => Contest.open("loading-contest-" + process.pid)])
  console.log(await open().then(() => "opened", (e) => e.name + ": " + e.message.split(";")[0]))
`
    const r = await runScript(script, { SLOTBUS_LIB: join(bin, "..", "lib", "libslotbus-abi0.so") })
    const lines = r.out.trim().split("\n")
    expect(lines[0]).toBe("NativeLibraryError NativeLibraryError NativeLibraryError")
    expect(lines.slice(1)).toEqual(
      [1, 2].map(() => expect.stringMatching(/^NativeLibraryError: .* has ABI version 0$/)),
    )
  }, 180_000)

  test("the library's functions exist only once a library passed its checks: before, any use says why", async () => {
    const script = `
import { loadNative, native } from "${REPO}/src/native/ffi.ts"
const used = () => { try { return String(native.sb_abi_version()) } catch (e) { return e.name + ": " + e.message } }
console.log(used())
await loadNative()
console.log(used())
`
    const [before, after] = (await runScript(script)).out.trim().split("\n")
    expect(before).toMatch(
      /^NativeLibraryError: libslotbus is not loaded: sb_abi_version was used before loadNative\(\) resolved/,
    )
    expect(after).toMatch(/^\d+$/)
  })

  test("the failure is not sticky: a later listen with a good library succeeds", async () => {
    const script = `
import { SlotBus } from "slotbus"
process.env.SLOTBUS_LIB = "${join(dir, "nowhere.so")}"
const first = await SlotBus.listen("loading-retry-" + process.pid).then(() => "loaded", (e) => e.name)
delete process.env.SLOTBUS_LIB
const bus = await SlotBus.listen("loading-retry-" + process.pid)
console.log(first, "then", bus.workerCount === 0 ? "listening" : "?")
await bus.close()
`
    expect((await runScript(script)).out).toContain("NativeLibraryError then listening")
  })

  test("importing slotbus, slotbus/http and SlotWorker does not load the library", async () => {
    const script = `
import "slotbus"
import "slotbus/http"
import { readFileSync } from "node:fs"
console.log(readFileSync("/proc/self/maps", "utf8").includes("libslotbus") ? "LOADED" : "NOT LOADED")
`
    expect((await runScript(script, { SLOTBUS_LIB: join(dir, "nowhere.so") })).out).toContain("NOT LOADED")
  })
})

test("bun build --compile embeds libslotbus: the binary round-trips with no prebuilds on disk", async () => {
  const app = join(dir, "app.ts")
  writeFileSync(
    app,
    `
import { SlotBus, SlotWorker } from "slotbus"
import { readFileSync } from "node:fs"
const name = "compiled-" + process.pid
const bus = await SlotBus.listen(name)
const worker = await SlotWorker.connect(name, (req) => ({ status: 200, body: "echo:" + req.text() }))
const res = await bus.request({ method: "POST", path: "/", body: "hi" })
const lib = readFileSync("/proc/self/maps", "utf8").split("\\n").find((l) => l.includes("libslotbus")) ?? ""
console.log(res.status, res.text(), lib.includes("${REPO}/prebuilds") ? "FROM-REPO" : "EMBEDDED")
await worker.close()
await bus.close()
`,
  )
  const out = join(dir, "bin")
  mkdirSync(out, { recursive: true })
  const build = await run([process.execPath, "build", "--compile", app, "--outfile", join(out, "app")], { cwd: dir })
  expect(build.code).toBe(0)
  // Run it from elsewhere, without the package: only what the binary carries can be used.
  const away = mkdtempSync(join(tmpdir(), "slotbus-compiled-"))
  try {
    cpSync(join(out, "app"), join(away, "app"))
    const env = { ...process.env }
    delete env.SLOTBUS_LIB
    const p = await run([join(away, "app")], { cwd: away, env })
    expect(p.stderr).toBe("")
    expect(p.stdout.trim()).toBe("200 echo:hi EMBEDDED")
  } finally {
    rmSync(away, { recursive: true, force: true })
  }
}, 60_000)

describe("macOS prebuilds (built here, not yet run on a Mac)", () => {
  test.each([
    ["arm64", "darwin-arm64", 0x0100000c], // CPU_TYPE_ARM64
    ["x64", "darwin-x64", 0x01000007], // CPU_TYPE_X86_64
  ])("darwin %s picks prebuilds/%s/libslotbus.dylib, a Mach-O library for that CPU", async (arch, dirName, cpu) => {
    expect(detectPlatform("darwin", arch)).toBe(dirName)
    const bytes = new DataView(await Bun.file(join(REPO, "prebuilds", dirName, libraryFile(dirName))).arrayBuffer())
    expect(bytes.getUint32(0, true)).toBe(0xfeedfacf) // MH_MAGIC_64
    expect(bytes.getUint32(4, true)).toBe(cpu)
    expect(bytes.getUint32(12, true)).toBe(6) // MH_DYLIB
  })

  test.each([
    ["win32", "x64"],
    ["freebsd", "x64"],
    ["darwin", "ia32"],
  ])("%s-%s is refused with the platforms that are supported named", (platform, arch) => {
    expect(() => detectPlatform(platform, arch)).toThrow("slotbus runs on Linux and macOS, x64/arm64")
  })
})

/** The calls slotbus.h, lease.h and topic.h declare: the library's ABI. */
function declaredCalls(): string[] {
  const names = new Set<string>()
  for (const h of ["slotbus.h", "lease.h", "topic.h"]) {
    const code = readFileSync(join(REPO, "csrc", h), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*#.*$/gm, "")
    for (const m of code.matchAll(/\b(sb[ltd]?_[a-z0-9_]+)\s*\(/g)) names.add(m[1]!)
  }
  return [...names].sort()
}

const nmSkip = toolSkipReason("nm")
sayWhySkipped("the exported-symbols check of the prebuilds", nmSkip)
test.skipIf(nmSkip !== null).each(["linux-x64", "linux-x64-musl", "linux-arm64", "linux-arm64-musl"])(
  "prebuilds/%s exports exactly the calls the public headers declare, nothing of the platform's or the files' own",
  async (p) => {
    const r = await run(["nm", "-D", "--defined-only", join(REPO, "prebuilds", p, libraryFile(p))])
    expect(r.code).toBe(0)
    const exported = r.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(" ").at(-1)!)
      .filter((s) => s !== "_init" && s !== "_fini") // the musl toolchain's
      .sort()
    expect(exported.length).toBeGreaterThan(100)
    expect(exported).toEqual(declaredCalls())
  },
)

test("an unknown SLOTBUS_PLATFORM is a NativeLibraryError naming the variable and its values", async () => {
  const r = await runScript(probe, { SLOTBUS_PLATFORM: "macos" })
  expect(r.out).toContain('NativeLibraryError: SLOTBUS_PLATFORM is "macos"; it must be "posix"')
})

test("bun build --compile for macOS embeds the darwin dylibs (the binary is cross-compiled here, not run)", async () => {
  const app = join(dir, "darwin-app.ts")
  writeFileSync(app, `import { SlotBus } from "slotbus"\nawait SlotBus.listen("compiled-darwin")\n`)
  const out = join(dir, "bin", "app-darwin")
  // bun fetches its darwin-arm64 runtime for this once (then it is cached)
  const build = await run(
    [process.execPath, "build", "--compile", "--target=bun-darwin-arm64", app, "--outfile", out],
    {
      cwd: dir,
    },
  )
  expect(build.stderr.trim().split("\n").at(-1) ?? "").not.toMatch(/error/i)
  expect(build.code).toBe(0)
  const binary = Buffer.from(await Bun.file(out).arrayBuffer())
  expect(binary.readUInt32LE(0)).toBe(0xfeedfacf) // a Mach-O executable
  for (const p of ["darwin-arm64", "darwin-x64"]) {
    const lib = Buffer.from(await Bun.file(join(REPO, "prebuilds", p, libraryFile(p))).arrayBuffer())
    expect(binary.includes(lib)).toBe(true)
  }
}, 120_000)

test("require() from CommonJS under Bun loads slotbus synchronously: every export, and a round trip", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-cjs-"))
  try {
    const file = join(dir, "app.cjs")
    writeFileSync(
      file,
      `const s = require(${JSON.stringify(join(REPO, "src/index.ts"))})
const names = Object.keys(s).sort()
;(async () => {
  const bus = await s.SlotBus.listen("cjs-" + process.pid)
  await bus.close()
  console.log(JSON.stringify({ names: names.length, SlotBus: typeof s.SlotBus, respond: typeof s.respond }))
})()
`,
    )
    const r = await run([process.execPath, file], { timeoutMs: 30_000 })
    expect(r.stderr).not.toContain("async module")
    expect(r.code, r.stderr).toBe(0)
    const esm = Object.keys(await import("../../src/index.ts")).length
    expect(JSON.parse(r.stdout)).toEqual({ names: esm, SlotBus: "function", respond: "function" })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
