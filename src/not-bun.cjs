// What a runtime but Bun and Node (dist/) gets from the package's exports: one clear line, not a loader error.
throw new Error(
  `slotbus needs Bun >= 1.4 (it is built on bun:ffi); this is ${typeof process === "object" ? `Node ${process.version}` : "not Bun"}. Run your app with bun.`,
)
