// The NATS transport's internals that its tests read (subjects, buckets, stream names). Users import slotbus/nats.
export { bucketOf, keyOf, marginFor, nextToken } from "./kv-lease-value.ts"
export { cover, topicSubjects, typeOfSubject } from "./topic-wire.ts"
export { streamOf } from "./topic-stream.ts"
