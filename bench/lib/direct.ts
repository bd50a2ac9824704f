// The `direct` variant of a bench's front (bench/carry, bench/realwork): its Bun.serve answering each request itself,
// in its callback, with no transport and no workers: the yardstick a transport's carrying is read against.

/** A front's setup answering `answer(path)` itself. */
export const direct = (answer: (path: string) => Response) => ({
  fetch: (req: Request) => answer(new URL(req.url).pathname),
  workers: [] as number[],
  threads: [] as number[],
  close: async () => {},
})
