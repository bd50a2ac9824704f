// The lines one client sent that the bus has not taken yet, handed over one at a time and in order. The source
// (a socket, stdin) is paused while more than `limit` bytes wait, so a client that writes faster than its worker
// reads holds the bus to `limit` plus one line, never more.
export class Inbound {
  private lines: string[] = []
  private head = 0
  private running = false
  private idleWaiters: (() => void)[] = []
  /** Bytes (UTF-16 units, near enough) of the lines waiting, the one being handed over included. */
  queuedBytes = 0

  constructor(
    private readonly take: (line: string) => Promise<void> | void,
    private readonly limit: number,
    private readonly onRoom: () => void,
  ) {}

  /** More than `limit` bytes wait: the caller should stop reading until `onRoom`. */
  get full(): boolean {
    return this.queuedBytes > this.limit
  }

  push(line: string): void {
    this.lines.push(line)
    this.queuedBytes += line.length
    if (!this.running) void this.run()
  }

  /** Resolves once every line pushed so far has been taken. */
  idle(): Promise<void> {
    return this.running ? new Promise((r) => this.idleWaiters.push(r)) : Promise.resolve()
  }

  private async run(): Promise<void> {
    this.running = true
    while (this.head < this.lines.length) {
      const line = this.lines[this.head]!
      this.lines[this.head++] = ""
      if (this.head > 1024 && this.head * 2 > this.lines.length) {
        this.lines = this.lines.slice(this.head)
        this.head = 0
      }
      const wasFull = this.full
      try {
        await this.take(line)
      } catch {
        // take() answers its own failures to the client
      }
      this.queuedBytes -= line.length
      if (wasFull && !this.full) this.onRoom()
    }
    this.lines = []
    this.head = 0
    this.running = false
    for (const r of this.idleWaiters.splice(0)) r()
  }
}
