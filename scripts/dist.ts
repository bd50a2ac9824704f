// Builds dist/, the JavaScript Node loads (issue 67: Node strips no types under node_modules, nor the parameter
// properties src/ uses): src/ compiled file for file by tsc (tsconfig.dist.json), so dist/ has src/'s tree, one
// module per file. Not a bundle: `bun build --splitting` renames the classes it moves into shared chunks
// (TimeoutError2, and --keep-names keeps nothing in Bun 1.4.5), and an error's name is its class's name.
// ES2022: `using` lowered, so a Node too old for it still reaches the UnsupportedRuntimeError. Run by `npm pack`.
import { rmSync } from "node:fs"
import { join } from "node:path"

const root = join(import.meta.dir, "..")
rmSync(join(root, "dist"), { recursive: true, force: true })
const tsc = Bun.spawnSync([join(root, "node_modules", ".bin", "tsc"), "-p", join(root, "tsconfig.dist.json")], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
})
if (tsc.exitCode !== 0) process.exit(tsc.exitCode ?? 1)
