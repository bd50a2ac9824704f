// Both ends of one hub<->worker channel in this process, through libslotbus's own listen/connect/accept: for the
// in-process benches (micro, breakdown) and for tests of the region's words.
import { Channel } from "../../src/core/wire/channel.ts"
import { HUB_CONFIG_WORDS, loadNative, type Chan } from "../../src/native/ffi.ts"

const KiB = 1024
const EAGAIN = -11
let made = 0

/** Both ends of one channel, as the library's handles: listen, start connecting, accept, finish the connect. */
export async function rawChannelPair(): Promise<{ hub: Chan; worker: Chan; close: () => void }> {
  const native = await loadNative()
  const name = Buffer.from(`channel-pair-${process.pid}-${made++}\0`)
  const listenFd = native.sb_listen(name)
  if (listenFd < 0) throw new Error(`sb_listen: ${listenFd}`)
  const err = new Int32Array(2)
  const worker = native.sb_connect_start(name, -1, err) as Chan | null
  if (!worker) throw new Error(`sb_connect_start: ${err[0]}`)
  const config = new Uint32Array(HUB_CONFIG_WORDS)
  config.set([4, 64 * KiB, 1024 * KiB, 0])
  let hub: Chan | null = null
  for (let i = 0; i < 1000 && !hub; i++) {
    hub = native.sb_accept(listenFd, config, err, err.subarray(1)) as Chan | null
    if (!hub) await Bun.sleep(1)
  }
  native.sb_unlisten(listenFd)
  if (!hub) throw new Error(`sb_accept: ${err[0]}`)
  let r: number
  while ((r = native.sb_connect_finish(worker, 0)) === EAGAIN) await Bun.sleep(1)
  if (r !== 0) throw new Error(`sb_connect_finish: ${r}`)
  return {
    hub,
    worker,
    close: () => {
      native.sb_close(hub)
      native.sb_close(worker)
    },
  }
}

/** Both ends of one channel, as the TypeScript Channels a hub and a worker make. */
export async function channelPair(): Promise<{ hub: Channel; worker: Channel; close: () => void }> {
  const raw = await rawChannelPair()
  return { hub: new Channel(raw.hub, "hub"), worker: new Channel(raw.worker, "worker"), close: raw.close }
}
