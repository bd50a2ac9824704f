// Child processes and this process's stdio on Bun: Bun.spawn, Bun.stdin, Bun.stdout.
import type { Process, SpawnOptions, Stdio } from "../runtime.ts"

/** A child process with pipes, files or inherited stdio. */
export const spawn = (command: string[], options?: SpawnOptions): Process =>
  Bun.spawn<Stdio, Stdio, Stdio>(command, options)
export const mainScript = (): string => Bun.main
export const stdinBytes = async (): Promise<Uint8Array> => new Uint8Array(await Bun.stdin.arrayBuffer())
export const stdinStream = (): AsyncIterable<Uint8Array> => Bun.stdin.stream()
export const stdoutSink = () => Bun.stdout.writer()
