// The command that starts this same program again (issue 47). In an app built with `bun build --compile`,
// process.execPath is the app, not bun: [process.execPath, "worker.ts"] runs the app's own entry once more, with
// "worker.ts" as an argument. The entry of a compiled binary lives in Bun's embedded file system (/$bunfs/).
import { mainScript } from "../../runtime/index.ts"

/** Whether this process runs from a binary `bun build --compile` made. */
export function isCompiled(): boolean {
  return mainScript().startsWith("/$bunfs/")
}

/**
 * argv that starts this program again with `args` after it: the binary alone when compiled, else bun and the
 * entry file, so `process.argv.slice(2)` is `args` in both. Give the role as an argument:
 * `superviseWorkers(bus, { command: selfCommand("worker") })`, and in the entry
 * `if (process.argv[2] === "worker") await import("./worker.ts")`. Bun's own flags (execArgv) are not passed.
 */
export function selfCommand(...args: string[]): string[] {
  for (const a of args)
    if (typeof a !== "string" || a.includes("\0"))
      throw new TypeError(`selfCommand takes its arguments as strings without NUL ("worker"), got ${String(a)}`)
  return isCompiled() ? [process.execPath, ...args] : [process.execPath, mainScript(), ...args]
}
