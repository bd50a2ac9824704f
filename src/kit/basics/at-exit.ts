// What a process holds that would outlive it, let go when it exits without closing it: a bus's socket files and an
// election it holds (PROTOCOL §1.1), a topic's or a contest's socket files and markers (§12.5, §13.2), a bus's
// flight-recorder file (§16.1). process.on("exit") runs on process.exit(), the event loop's end and an
// uncaught error, in Bun and in Node; not on a signal's default action nor kill -9, whose leftovers the next process
// to open the name takes over.
interface Closes {
  close(): void
}

const held = new Set<Closes>()
let hooked = false

/** `x.close()` runs when this process exits unless called before; x's close() calls the function returned first. */
export function closeAtExit(x: Closes): () => void {
  if (!hooked) {
    hooked = true
    process.on("exit", () => {
      for (const h of [...held])
        try {
          h.close()
        } catch {} // the others still go
    })
  }
  held.add(x)
  return () => void held.delete(x)
}
