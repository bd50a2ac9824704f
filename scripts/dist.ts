// Builds dist/, the JavaScript Node loads (issue 67: Node strips no types under node_modules, nor the parameter
// properties src/ uses): src/ compiled file for file by tsc (tsconfig.dist.json), so dist/ has src/'s tree, one
// module per file. Not a bundle: `bun build --splitting` renames the classes it moves into shared chunks
// (TimeoutError2, and --keep-names keeps nothing in Bun 1.4.5), and an error's name is its class's name.
// ES2022: `using` lowered, so a Node too old for it still reaches the UnsupportedRuntimeError. Run by `npm pack`.
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"

const root = join(import.meta.dir, "..")
rmSync(join(root, "dist"), { recursive: true, force: true })
const tsc = Bun.spawnSync([join(root, "node_modules", ".bin", "tsc"), "-p", join(root, "tsconfig.dist.json")], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
})
if (tsc.exitCode !== 0) process.exit(tsc.exitCode ?? 1)

// A bundler for Node (bun build --target=node, esbuild --platform=node) follows runtime/index.js's literal requires,
// which tsc leaves as written (rewriteRelativeImportExtensions rewrites imports, not a require): Node's adapter is
// required as the .js that is here, and Bun's (bun:ffi, every prebuild as a file import; Bun loads src/, never this)
// becomes the error for Bun running a build for Node. Each rewrite must find its text once, or the build fails.
const dist = join(root, "dist")
const pick = join(dist, "runtime", "index.js")
let text = readFileSync(pick, "utf8")
for (const [from, to] of [
  ['require("./node/index.ts")', 'require("./node/index.js")'],
  ['require("./bun/index.ts")', 'require("./errors.js").nodeBuildUnderBun()'],
] as const) {
  if (text.split(from).length !== 2) fail(`${relative(root, pick)} holds ${from} not once: change this rewrite with it`)
  text = text.replace(from, to)
}
writeFileSync(pick, text)

// and nothing in dist/ names a .ts file or, outside runtime/bun/, reaches into it
const bunAdapter = join(dist, "runtime", "bun")
for (const f of readdirSync(dist, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js"))) {
  const file = join(dist, f)
  const code = readFileSync(file, "utf8") // its code, not its comments (which quote examples)
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "")
    .replace(/\s\/\/\s.*$/gm, "")
  for (const m of code.matchAll(/(?:\brequire\s*\(|\bimport\s*\(|\bfrom)\s*["'](\.\.?\/[^"']*)["']/g)) {
    const target = resolve(dirname(file), m[1]!)
    if (m[1]!.endsWith(".ts")) fail(`dist/${f} loads ${m[1]}, a .ts file dist/ does not have`)
    if (!file.startsWith(bunAdapter + "/") && target.startsWith(bunAdapter + "/"))
      fail(`dist/${f} loads ${m[1]}, Bun's adapter, which a bundle for Node cannot take`)
  }
}

function fail(why: string): never {
  console.error(`scripts/dist.ts: ${why}`)
  process.exit(1)
}
