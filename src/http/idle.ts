// How an HTTP hub and its workers wait for each other unless told otherwise: poll 2 µs per event-loop turn, park
// after 1 ms without work. The core's "adaptive" polls 20 µs a turn, which an HTTP process pays twice: the hub
// reads none of its sockets meanwhile, and on a small machine the polling side holds a CPU that the other side
// or the clients need. `bun bench/http/hub.ts --duration=2 --rounds=5 --idle=adaptive,2/1` on a 2-vCPU AMD EPYC
// VM (2026-11-24): 1 client p50 81 → 46 µs, 16 clients 35.0k → 38.9k req/s.
import type { IdleStrategy } from "../core/index.ts"

export const HTTP_IDLE: IdleStrategy = { spinMicros: 2, parkAfterMs: 1 }
