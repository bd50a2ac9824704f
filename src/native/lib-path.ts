import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { NativeLibraryError } from "../errors.ts"
import { embeddedLibrary } from "../runtime/index.ts"

/** This module's file (in an app's bundle, the bundle); none in a CommonJS bundle, where import.meta is empty. */
const moduleFile = import.meta.url?.startsWith("file:") ? fileURLToPath(import.meta.url) : undefined

/**
 * The package's folder: the nearest one above this file with a package.json, and whether that is slotbus's own. It
 * is, where this file is src/native/lib-path.ts (the repository, and the package under Bun) or dist/native/lib-path.js
 * (the package under Node). In an app bundled for Node with slotbus in it, this code is part of the app's bundle: the
 * package.json found is the app's (or none is), and no prebuild lies beside it.
 */
function packageRoot(): { dir: string; own: boolean } {
  if (!moduleFile) return { dir: "", own: false }
  const here = dirname(moduleFile)
  for (let dir = here; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json")
    if (existsSync(manifest)) return { dir, own: packageName(manifest) === "slotbus" }
    if (dirname(dir) === dir) return { dir: here, own: false }
  }
}

function packageName(manifest: string): unknown {
  try {
    return (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name
  } catch {
    return undefined
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
  const file = libraryFile(platform)
  const root = packageRoot()
  if (!root.own) {
    throw new NativeLibraryError(
      `No libslotbus for ${platform}: slotbus is bundled into ${moduleFile ?? "a CommonJS bundle"}, and a bundle ` +
        `does not carry the library beside it (SLOTBUS_LIB is unset). Leave slotbus out of the bundle (esbuild ` +
        `--packages=external or --external:slotbus, bun build --external slotbus) so it loads from node_modules, or ` +
        `set SLOTBUS_LIB to node_modules/slotbus/prebuilds/${platform}/${file} (or wherever you ship that file).`,
    )
  }
  // the prebuild in the package itself
  const path = join(root.dir, "prebuilds", platform, file)
  if (existsSync(path)) return path
  throw new NativeLibraryError(
    `No libslotbus for ${platform}: looked at ${path} (and SLOTBUS_LIB, unset). ` +
      `Run \`npm run build\` in ${root.dir} (needs the zig devDependency), or set SLOTBUS_LIB to a libslotbus.so you built.`,
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
