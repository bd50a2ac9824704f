// The files a pool's worker logs go to with `logs: { dir }` (worker-logs.ts): `<dir>/<pool>.log`, rotated by size to
// `<pool>.log.1` … `.<keep>`. The directory must be a real one of this user that no one else can write (then no one
// else can swap a file in it for a link); each file is opened O_NOFOLLOW, checked and kept 0600.
// The directory is opened once and checked through that descriptor; every file is then named through it
// (/proc/self/fd/<fd>/<file> resolves in the opened directory itself, as openat does), never through the path again:
// whoever owns an ancestor (`/tmp/shop` of `/tmp/shop/logs`) can swap the path for a link to another directory
// after the check, and the files would be created, appended and rotated there.
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
  statSync,
  writeSync,
} from "node:fs"
import { join } from "node:path"
import { SlotBusError } from "../../errors.ts"

/** A worker log directory or file that cannot be used safely (or at all); the message says what to change. */
export class WorkerLogsError extends SlotBusError {}

const euid = () => process.geteuid?.() ?? 0
const FLAGS = fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW | fsc.O_NONBLOCK
const DIR_FLAGS = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW
// Linux names a file in an open directory by /proc/self/fd; elsewhere the path is used, checked to still be the
// directory opened before each rotation and open (a narrower window, not none).
const PROC_FD = process.platform === "linux"

/** A log directory opened once: files are named relative to it, whatever its path comes to point at later. */
export class LogDir {
  private fd: number
  private readonly dev: number
  private readonly ino: number

  /** Opens `dir` (made 0700 when missing); throws WorkerLogsError unless it is a directory of this user others cannot write. */
  constructor(readonly path: string) {
    this.fd = openDir(path)
    const st = fstatSync(this.fd)
    this.dev = st.dev
    this.ino = st.ino
    try {
      checkDirStat(path, st)
    } catch (e) {
      this.close()
      throw e
    }
    dirs.register(this, this.fd, this)
  }

  /** The name of `file` in this directory, for one call: through the descriptor on Linux. */
  at(file: string): string {
    if (this.fd < 0) throw new WorkerLogsError(`logs.dir ${this.path} was closed`)
    if (PROC_FD) return `/proc/self/fd/${this.fd}/${file}`
    const st = statSync(this.path, { throwIfNoEntry: false })
    if (!st || st.dev !== this.dev || st.ino !== this.ino)
      throw new WorkerLogsError(`logs.dir ${this.path} is no longer the directory the pool opened; make it again`)
    return join(this.path, file)
  }

  close(): void {
    if (this.fd < 0) return
    dirs.unregister(this)
    closeSync(this.fd)
    this.fd = -1
  }
}

const dirs = new FinalizationRegistry<number>((fd) => closeSync(fd))

function openDir(dir: string): number {
  const open = () => openSync(dir, DIR_FLAGS)
  try {
    return open()
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    // O_DIRECTORY | O_NOFOLLOW on a link fails ENOTDIR (Linux) or ELOOP: lstat tells which it was
    if (code === "ELOOP" || (code === "ENOTDIR" && lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink()))
      throw new WorkerLogsError(`logs.dir ${dir} is a symbolic link; pass the directory itself, or another`)
    if (code === "ENOTDIR") throw new WorkerLogsError(`logs.dir ${dir} is not a directory; pass a directory`)
    if (code !== "ENOENT") throw new WorkerLogsError(`logs.dir ${dir} cannot be opened (${(e as Error).message})`)
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    return open()
  } catch (e) {
    throw new WorkerLogsError(`logs.dir ${dir} cannot be made (${(e as Error).message}); make it or pass another`)
  }
}

function checkDirStat(dir: string, st: { uid: number; mode: number; isDirectory(): boolean }): void {
  const mode = (st.mode & 0o777).toString(8).padStart(4, "0")
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
  /** The file's path as the user gave it (for messages): it is never opened by this path. */
  readonly path: string
  private readonly dir: LogDir
  private readonly name: string
  private fd = -1
  private size = 0

  constructor(
    dir: string,
    name: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    this.dir = new LogDir(dir)
    this.name = `${name}.log`
    this.path = join(dir, this.name)
    try {
      this.open()
    } catch (e) {
      this.dir.close()
      throw e
    }
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
    const at = (i: number) => this.dir.at(i === 0 ? this.name : `${this.name}.${i}`)
    if (this.keep === 0) rmSync(at(0), { force: true })
    for (let i = this.keep - 1; i >= 1; i--)
      try {
        renameSync(at(i), at(i + 1))
      } catch {} // not there yet
    if (this.keep > 0) renameSync(at(0), at(1))
    this.open()
  }

  private open() {
    let fd: number
    try {
      fd = openSync(this.dir.at(this.name), FLAGS, 0o600)
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
