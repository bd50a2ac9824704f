// Servers a bench starts for its rivals (redis-server, nats-server): on a free loopback port, used once listening.
import { spawn, type Child } from "./child.ts"
import { findTool } from "./tools.ts"

/** Resolves once something accepts TCP connections on 127.0.0.1:port; false after 10 s. */
export async function accepting(port: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
      (s) => (s.end(), true),
      () => false,
    )
    if (ok) return true
    await Bun.sleep(50)
  }
  return false
}

/**
 * redis-server on a free loopback port without persistence, or null where it is not installed. Resolved once it
 * listens: a RedisClient made before that can hang reconnecting.
 */
export async function startRedis(): Promise<{ url: string; child: Child } | null> {
  const bin = findTool("redis-server")
  if (!bin) return null
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = spawn([bin, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
  if (await accepting(port)) return { url: `redis://127.0.0.1:${port}`, child }
  await child.kill()
  return null
}
