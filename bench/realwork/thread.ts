// A Worker thread of `slotbus bench realwork`'s threads variant. It first posts its kernel thread id (for the
// bench's CPU accounting); then { id, page } (or { id, cached }) is answered { id, html }, and { id, thumb } with
// THUMB_CHUNKS { id, chunk } (each buffer transferred) and { id, end: true }.
import { readlinkSync } from "node:fs"
import { cachedPage, renderPage, thumbChunks } from "./render.ts"

declare const self: Worker

self.postMessage({ tid: Number(readlinkSync("/proc/thread-self").split("/").pop()) })

self.onmessage = (e: MessageEvent<{ id: number; page?: number; cached?: number; thumb?: number }>) => {
  const { id, page, cached, thumb } = e.data
  if (page !== undefined) return self.postMessage({ id, html: renderPage(page) })
  if (cached !== undefined) return self.postMessage({ id, html: cachedPage(cached) })
  for (const chunk of thumbChunks(thumb!)) self.postMessage({ id, chunk }, [chunk.buffer as ArrayBuffer])
  self.postMessage({ id, end: true })
}
