// bus.fetch's reading of a Request's body: refused at the bus's maxBodyBytes while it is read, never after.
import { PayloadTooLargeError } from "../../errors.ts"

/** A Request's body, refused at `max` bytes: by its Content-Length before reading, or once more than that arrived. */
export async function bodyUpTo(request: Request, max: number): Promise<Uint8Array | undefined> {
  const stream = request.body
  if (!stream) return undefined
  const tooLarge = (what: string) => {
    stream.cancel().catch(() => {})
    return new PayloadTooLargeError(
      `request body is ${what} bytes, over maxBodyBytes ${max}; raise maxBodyBytes on the hub`,
    )
  }
  const declared = request.headers.get("content-length")
  if (declared !== null && /^\d+$/.test(declared)) {
    if (Number(declared) > max) throw tooLarge(declared)
    return request.bytes() // a body longer than it said is refused by request() all the same
  }
  const reader = stream.getReader()
  const parts: Uint8Array[] = []
  let length = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return Buffer.concat(parts, length)
    length += value.length
    if (length > max) {
      reader.releaseLock()
      throw tooLarge(`over ${length}`)
    }
    parts.push(value)
  }
}
