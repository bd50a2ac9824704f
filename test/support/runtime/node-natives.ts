// Run by test/runtime/node-natives.test.ts under Node with --allow-natives-syntax: whether V8 keeps each object of
// the library's functions (native, leaseNative, topicNative: the Node adapter's openLibrary) with fast properties,
// which optimized code reads inline, or as a dictionary, which it reads through a LoadIC call each time. Prints JSON.
import { leaseNative, loadNative, native, topicNative } from "../../../src/native/ffi.ts"

await loadNative()
const fast = new Function("o", "return %HasFastProperties(o)") as (o: object) => boolean
console.log(JSON.stringify({ native: fast(native), leaseNative: fast(leaseNative), topicNative: fast(topicNative) }))
