// A subscription's native side and its lifetime: the handle its topic also holds, the read of its wake socket from
// its first park on, and their release, by close() or, for one dropped unclosed, by the garbage collector.
import { topicNative } from "../native/ffi.ts"
import { fdReader, type Pointer } from "../runtime/index.ts"

/** A subscription's native handle, also held by its topic so closing the topic frees dropped ones first. */
export interface NativeSub {
  ptr: Pointer | null
  /** The read of its wake socket, from its first park on: cancelled before the native side (and its fd) is freed. */
  bell?: ReadableStreamDefaultReader<Uint8Array>
}

/** Frees `n`'s native side once the runtime has let go of its wake socket, so it never touches a reused fd number. */
export function freeNative(n: NativeSub): Promise<void> {
  const free = () => {
    if (n.ptr) topicNative.sb_sub_close(n.ptr)
    n.ptr = null
  }
  if (!n.bell) return Promise.resolve(free())
  return n.bell.cancel().then(free, free)
}

/** A subscription dropped without close() (never read to the end, garbage-collected) leaves the registry here. */
export const dropped = new FinalizationRegistry<NativeSub>((n) => void freeNative(n))

/** The subscription the bell rings for, held weakly. */
interface Rung {
  readonly isClosed: boolean
  onRing: ((count: number) => void) | undefined
}

/**
 * Reads `native`'s wake socket from its first park on (a subscriber that never waits holds no read open) and calls
 * its subscription's `onRing` each time it rings. The read pending in the event loop holds the subscription
 * weakly: one dropped unclosed is still garbage (its finalizer cancels the read, then frees the native side).
 */
export function listenBell(native: NativeSub, ptr: Pointer, subscription: Rung) {
  if (native.bell) return
  const sub = new WeakRef(subscription)
  const bell = (native.bell = fdReader(topicNative.sb_sub_fd(ptr)))
  const next = (): void => {
    bell.read().then(
      (r) => {
        const s = sub.deref()
        if (r.done || !s || s.isClosed || !native.ptr) return
        topicNative.sb_sub_unpark(native.ptr) // the ringer took the parked flag; drain what else came
        s.onRing?.(1)
        setImmediate(next) // one read per turn: a member writing without pause cannot hold the loop
      },
      () => {},
    )
  }
  next()
}
