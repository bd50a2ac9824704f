// Numbered events for the tests of topics across hosts and durable topics: a publisher of "0", "1", … paced so the
// bridges keep up, and a reader of a durable topic's stream from its oldest event.
import type { Topic } from "../../../src/events/index.ts"

/**
 * Publishes events `type` with data "0" … "n-1", `perMs` of them a millisecond: `publish(until)` goes on until `until()`
 * holds or all are out; `count` is how many are out.
 */
export function numberedPublisher(topic: Topic, type: string, n: number, perMs: number) {
  let i = 0
  return {
    get count() {
      return i
    },
    async publish(until: () => boolean) {
      for (; i < n && !until(); i++) {
        topic.publish({ type, data: String(i) })
        if (i % perMs === perMs - 1) await Bun.sleep(1)
      }
    },
  }
}

/** The data of the first `n` events of a durable topic's stream (fewer if none comes for 30 s); JetStream may take
 * a few seconds to answer after a server restarted: asked again, 10 times. */
export async function readStream(topic: Topic, n: number): Promise<string[]> {
  let sub: Awaited<ReturnType<Topic["subscribeDurable"]>> | undefined
  for (let tries = 0; !sub; tries++)
    sub = await topic.subscribeDurable({}, { from: "oldest" }).catch((e: Error) => {
      if (tries >= 10) throw e
      return undefined
    })
  const got: string[] = []
  while (got.length < n) {
    const ev = await sub.receive(30_000)
    if (!ev) break
    got.push(ev.text())
  }
  return got
}
