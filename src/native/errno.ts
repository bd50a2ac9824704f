// Negative errno values libslotbus returns (slots, leases and topics alike), by name: code never spells a raw
// number. They are this OS's numbers (macOS numbers several differently from Linux), from os.constants, which
// lacks EUSERS and EHOSTDOWN: those are given here for Linux and macOS.
import { constants } from "node:os"

const sysErrno = constants.errno as Record<string, number | undefined>
const errno = (name: string, missing?: { linux: number; darwin: number }) =>
  -(sysErrno[name] ?? (process.platform === "darwin" ? missing!.darwin : missing!.linux))

export const Errno = {
  EPERM: errno("EPERM"),
  ENOENT: errno("ENOENT"),
  EINTR: errno("EINTR"),
  E2BIG: errno("E2BIG"),
  EAGAIN: errno("EAGAIN"),
  ENOMEM: errno("ENOMEM"),
  EACCES: errno("EACCES"),
  EEXIST: errno("EEXIST"),
  EINVAL: errno("EINVAL"),
  ENOSPC: errno("ENOSPC"),
  EPIPE: errno("EPIPE"),
  EPROTO: errno("EPROTO"),
  EUSERS: errno("EUSERS", { linux: 87, darwin: 68 }),
  EMFILE: errno("EMFILE"),
  ENFILE: errno("ENFILE"),
  EMSGSIZE: errno("EMSGSIZE"),
  ENOTSUP: errno("ENOTSUP"),
  EADDRINUSE: errno("EADDRINUSE"),
  ECONNRESET: errno("ECONNRESET"),
  ETIMEDOUT: errno("ETIMEDOUT"),
  ECONNREFUSED: errno("ECONNREFUSED"),
  ECANCELED: errno("ECANCELED"),
  EHOSTDOWN: errno("EHOSTDOWN", { linux: 112, darwin: 64 }),
} as const
