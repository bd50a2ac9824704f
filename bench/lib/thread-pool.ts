// The Worker threads of a bench front (bench/realwork, bench/carry): each thread's script first posts
// { tid: <its kernel thread id> } (for the bench's CPU accounting), then answers messages carrying an `id` with
// replies carrying the same id. Each message goes to the least busy thread.

/** The index of the smallest count: the least busy worker. */
export function leastBusy(busy: number[]): number {
  let at = 0
  for (let i = 1; i < busy.length; i++) if (busy[i]! < busy[at]!) at = i
  return at
}

export interface ThreadPool<R> {
  /** The threads' kernel thread ids. */
  tids: number[]
  /** Posts `message` with a fresh id to the least busy thread; `onReply` hears its replies until it returns true. */
  send(message: object, onReply: (reply: R) => boolean): void
  close(): void
}

/** `n` threads running `script`, resolved once each has posted its thread id. */
export async function threadPool<R extends { id: number }>(script: string, n: number): Promise<ThreadPool<R>> {
  const busy = Array.from({ length: n }, () => 0)
  const pending = new Map<number, (r: R) => void>()
  const tids: Promise<number>[] = []
  const pool = Array.from({ length: n }, () => {
    const w = new Worker(script)
    tids.push(new Promise((r) => w.addEventListener("message", (e) => r(e.data.tid), { once: true })))
    w.addEventListener("message", (e: MessageEvent<R>) => pending.get(e.data.id)?.(e.data))
    return w
  })
  let next = 0
  return {
    tids: await Promise.all(tids),
    send(message, onReply) {
      const at = leastBusy(busy)
      const id = next++
      busy[at]!++
      pending.set(id, (r) => {
        if (!onReply(r)) return
        busy[at]!--
        pending.delete(id)
      })
      pool[at]!.postMessage({ ...message, id })
    },
    close: () => pool.forEach((w) => w.terminate()),
  }
}
