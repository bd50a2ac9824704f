// What an RPC call's request method and reply status say (docs/PROTOCOL.md §6.1, the spec), written once: the
// encoding (rpc/rpc.ts), the trace (probe/trace.ts) and the metrics (observe/bus-metrics.ts) read them from here.

/** The request method of an RPC call, by the encoding of its body; neither is an HTTP token, so no HTTP client can send one. */
export const RpcVerb = { JSON: "rpc:json", CBOR: "rpc:cbor" } as const

/** Whether a head's method is an RPC call's: both verbs start `rpc:`, which no HTTP method can. */
export function isRpcVerb(method: string): boolean {
  return method.startsWith("rpc:")
}

/** The reply statuses of an RPC call (outside HTTP's range, so a plain handler's answer is never taken for one). */
export const RpcStatus = {
  RESULT_JSON: 720,
  RESULT_TEXT: 722,
  RESULT_BYTES: 723,
  RESULT_CBOR: 724,
  THROWN_JSON: 730,
  THROWN_CBOR: 734,
  NO_SUCH_METHOD: 744,
} as const

/**
 * What slotbus 0.3 and before wrote for a value JSON cannot carry: the runtime's own structured-clone bytes, which
 * another engine cannot read. Never written now; read only to refuse with a ProtocolError that names the old peer.
 */
export const RetiredRpc = { VERB: "rpc:clone", RESULT: 721, THROWN: 731 } as const

/**
 * What the caller of an RPC call gets from a reply of `status`: its result (null), or the class of the error it is,
 * as decodeReply throws it: a thrown value is a RemoteError; a retired status (an older worker) a ProtocolError; no
 * such function, or any status that is no RPC reply (a plain handler answered), an UnknownMethodError.
 */
export function rpcErrorOf(status: number): "RemoteError" | "UnknownMethodError" | "ProtocolError" | null {
  switch (status) {
    case RpcStatus.RESULT_JSON:
    case RpcStatus.RESULT_TEXT:
    case RpcStatus.RESULT_BYTES:
    case RpcStatus.RESULT_CBOR:
      return null
    case RpcStatus.THROWN_JSON:
    case RpcStatus.THROWN_CBOR:
      return "RemoteError"
    case RetiredRpc.RESULT:
    case RetiredRpc.THROWN:
      return "ProtocolError"
    default:
      return "UnknownMethodError"
  }
}
