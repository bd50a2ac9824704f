// The functions of the RPC bench behind process.send: a child Bun process answers { id, method, args } with
// { id, result } over Bun.spawn's IPC channel (structured clone, "advanced" serialization). Sends "ready" first.
const api: Record<string, (...args: never[]) => unknown> = {
  add: (a: number, b: number) => a + b,
  echo: (value: never) => value,
}

process.on("message", (m) => {
  const { id, method, args } = m as { id: number; method: string; args: never[] }
  process.send!({ id, result: api[method]!(...args) })
})
process.on("disconnect", () => process.exit(0))
process.send!("ready")
