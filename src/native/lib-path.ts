import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { NativeLibraryError } from "../errors.ts"
import { embeddedLibrary } from "../runtime/index.ts"

/**
 * The package's folder: the nearest one above this file with a package.json. This file is src/native/lib-path.ts in
 * the repository and under Bun, but a chunk of dist/ (one level down, not two) in the JavaScript Node loads.
 */
function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  for (let dir = here; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir
    if (dirname(dir) === dir) return join(here, "..", "..")
  }
}

/** Path of the libslotbus shared library for this process: $SLOTBUS_LIB, else the matching prebuild. */
export async function libraryPath(): Promise<string> {
  const override = process.env.SLOTBUS_LIB
  if (override) {
    if (existsSync(override)) return override
    throw new NativeLibraryError(
      `SLOTBUS_LIB is set to ${override}, which does not exist. Point it at a built libslotbus.so or unset it.`,
    )
  }
  const platform = detectPlatform()
  const embedded = await embeddedLibrary(platform)
  if (embedded !== undefined) return embedded
  // the prebuild in the package itself
  const root = packageRoot()
  const path = join(root, "prebuilds", platform, libraryFile(platform))
  if (existsSync(path)) return path
  throw new NativeLibraryError(
    `No libslotbus for ${platform}: looked at ${path} (and SLOTBUS_LIB, unset). ` +
      `Run \`npm run build\` in ${root} (needs the zig devDependency), or set SLOTBUS_LIB to a libslotbus.so you built.`,
  )
}

/** The library's file name in a prebuilds/ directory. */
export function libraryFile(platform: string): string {
  return platform.startsWith("darwin-") ? "libslotbus.dylib" : "libslotbus.so"
}

/** "linux-x64", "linux-arm64-musl", "darwin-arm64", …: the prebuilds/ directory name for this process. */
export function detectPlatform(platform: string = process.platform, arch: string = process.arch): string {
  const supported = (platform === "linux" || platform === "darwin") && (arch === "x64" || arch === "arm64")
  if (!supported) {
    throw new NativeLibraryError(
      `slotbus runs on Linux and macOS, x64/arm64; this is ${platform}-${arch}. Set SLOTBUS_LIB if you built libslotbus yourself.`,
    )
  }
  // macOS always runs the portable backend (docs/PROTOCOL.md §13); Linux picks one at load (SLOTBUS_PLATFORM).
  if (platform === "darwin") return `darwin-${arch}`
  return `linux-${arch}${isMusl() ? "-musl" : ""}`
}

function isMusl(): boolean {
  // Bun's and Node's report only carry glibcVersionRuntime when the runtime itself is linked against glibc.
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header
  if (header) return typeof header.glibcVersionRuntime !== "string"
  // No report: a musl loader and no glibc one means musl (a glibc system may have musl installed too).
  const loaderArch = process.arch === "x64" ? "x86_64" : "aarch64"
  const glibcLoader = process.arch === "x64" ? "/lib64/ld-linux-x86-64.so.2" : "/lib/ld-linux-aarch64.so.1"
  return existsSync(`/lib/ld-musl-${loaderArch}.so.1`) && !existsSync(glibcLoader)
}
