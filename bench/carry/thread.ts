// A Worker thread of `slotbus bench carry`'s threads variant. It first posts its kernel thread id (for the bench's
// CPU accounting); then { id, path } is answered { id, value }: the small object, or the page's text.
import { readlinkSync } from "node:fs"
import { page, route, small } from "../lib/answers.ts"

declare const self: Worker

self.postMessage({ tid: Number(readlinkSync("/proc/thread-self").split("/").pop()) })

self.onmessage = (e: MessageEvent<{ id: number; path: string }>) => {
  const r = route(e.data.path)
  self.postMessage({ id: e.data.id, value: r && (r.answer === "small" ? small(r.id) : page(r.id)) })
}
