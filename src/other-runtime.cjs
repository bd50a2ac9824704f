// What a runtime gets from the package's exports that takes neither the "bun" condition (src/) nor the "node" one
// (dist/): a bundle made for browsers or an edge runtime, say. One clear line, not a loader error.
throw new Error(
  'slotbus runs on Bun >= 1.4 or Node >= 26.9 (it is built on bun:ffi and node:ffi); this runtime loaded it without the "bun" or "node" export condition (a bundle for browsers or an edge runtime?)',
)
