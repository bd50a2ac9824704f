// The files a pool's worker logs go to with `logs: { dir }` (worker-logs.ts): `<dir>/<pool>.log`, rotated by size to
// `<pool>.log.1` … `.<keep>`. The directory must be a real one of this user that no one else can write (then no one
// else can swap a file in it for a link); each file is opened O_NOFOLLOW, checked and kept 0600.
import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs"
import { join } from "node:path"
import { SlotBusError } from "../errors.ts"

/** A worker log directory or file that cannot be used safely (or at all); the message says what to change. */
export class WorkerLogsError extends SlotBusError {}

const euid = () => process.geteuid?.() ?? 0
const FLAGS = fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW | fsc.O_NONBLOCK

/** Makes `dir` (0700) when missing; throws WorkerLogsError unless it is a directory of this user others cannot write. */
export function checkLogDir(dir: string): void {
  let st = lstatSync(dir, { throwIfNoEntry: false })
  if (!st) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
    } catch (e) {
      throw new WorkerLogsError(`logs.dir ${dir} cannot be made (${(e as Error).message}); make it or pass another`)
    }
    st = lstatSync(dir)
  }
  const mode = (st.mode & 0o777).toString(8).padStart(4, "0")
  if (st.isSymbolicLink())
    throw new WorkerLogsError(`logs.dir ${dir} is a symbolic link; pass the directory itself, or another`)
  if (!st.isDirectory()) throw new WorkerLogsError(`logs.dir ${dir} is not a directory; pass a directory`)
  if (st.uid !== euid())
    throw new WorkerLogsError(
      `logs.dir ${dir} belongs to uid ${st.uid}, not to this user (${euid()}), who could swap its files; make one of your own (mkdir -m 700 ${dir}) or pass another`,
    )
  if (st.mode & 0o022)
    throw new WorkerLogsError(
      `logs.dir ${dir}: others can write it (mode ${mode}), so swap its files; chmod go-w it or pass another`,
    )
}

/** `<dir>/<name>.log`, appended to, rotated once the next line would take it past `maxBytes`; `keep` old files. */
export class LogFile {
  readonly path: string
  private fd = -1
  private size = 0

  constructor(
    dir: string,
    name: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    checkLogDir(dir)
    this.path = join(dir, `${name}.log`)
    this.open()
    this.close() // checked now; opened again by the first line
  }

  /** Appends `lines` (each ending in "\n"), rotating between lines as needed. Throws when the file cannot be written. */
  write(lines: string[]): void {
    if (this.fd < 0) this.open()
    let batch = ""
    let bytes = 0
    for (const line of lines) {
      const n = Buffer.byteLength(line)
      if (this.size + bytes + n > this.maxBytes && this.size + bytes > 0) {
        this.append(batch, bytes)
        this.rotate()
        batch = ""
        bytes = 0
      }
      batch += line
      bytes += n
    }
    this.append(batch, bytes)
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }

  private append(text: string, bytes: number) {
    if (bytes === 0) return
    writeSync(this.fd, text)
    this.size += bytes
  }

  private rotate() {
    this.close()
    if (this.keep === 0) rmSync(this.path, { force: true })
    for (let i = this.keep - 1; i >= 1; i--)
      try {
        renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`)
      } catch {} // not there yet
    if (this.keep > 0) renameSync(this.path, `${this.path}.1`)
    this.open()
  }

  private open() {
    let fd: number
    try {
      fd = openSync(this.path, FLAGS, 0o600)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      const why = code === "ELOOP" ? "it is a symbolic link" : (e as Error).message
      throw new WorkerLogsError(`cannot open the worker log ${this.path}: ${why}; remove it or pass another logs.dir`)
    }
    const st = fstatSync(fd)
    if (!st.isFile() || st.uid !== euid()) {
      closeSync(fd)
      throw new WorkerLogsError(
        `the worker log ${this.path} is ${st.isFile() ? `a file of uid ${st.uid}` : "not a regular file"}; remove it or pass another logs.dir`,
      )
    }
    if (st.mode & 0o077) fchmodSync(fd, 0o600) // this user's own file, made readable by others before
    this.fd = fd
    this.size = st.size
  }
}
