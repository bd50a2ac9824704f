// The functions of the RPC bench for the worker_threads pools (tinypool, piscina): a pool task is one argument.
export function add({ a, b }: { a: number; b: number }): number {
  return a + b
}

export function echo<T>(value: T): T {
  return value
}
