// With an OpenTelemetry SDK, each MCP request POSTed runs in a SERVER span named as OpenTelemetry's MCP conventions
// say (`{mcp.method.name} {target}`: "tools/call echo", "initialize"), with the session, the request's id, the pool
// and the instance that answered; an error answer sets its status. A child of the active span (an instrument()ed
// front) or else of the request's `traceparent`. Without an SDK a request pays one property read.
import { otelTracing, receivedContext, remoteParent, slotbusTracer, SPAN_ERROR } from "../kit/index.ts"
import type { JsonRpcMessage } from "./types.ts"

export interface McpSpan {
  end(answer: JsonRpcMessage, instance: number): void
}

export function mcpSpan(request: Request, msg: JsonRpcMessage, session: string, pool: string): McpSpan | null {
  const o = otelTracing()
  if (o === null) return null
  const method = msg.method!
  const tool = method === "tools/call" ? (msg.params as { name?: unknown } | undefined)?.name : undefined
  const target = typeof tool === "string" ? ` ${tool}` : ""
  let parent = o.context.active()
  if (o.trace.getSpan(parent) === undefined) {
    const tc = receivedContext(request.headers.get("traceparent"), request.headers.get("tracestate"))
    const sc = tc && remoteParent(o, tc)
    if (sc) parent = o.trace.setSpanContext(o.ROOT_CONTEXT, sc)
  }
  const span = slotbusTracer(o).startSpan(
    `${method}${target}`,
    {
      kind: o.SpanKind.SERVER,
      attributes: {
        "mcp.method.name": method,
        "mcp.session.id": session,
        "jsonrpc.request.id": String(msg.id),
        "mcp.protocol.version": request.headers.get("mcp-protocol-version") ?? undefined,
        "gen_ai.tool.name": typeof tool === "string" ? tool : undefined,
        "network.transport": "tcp",
        "slotbus.stdio.pool": pool,
      },
    },
    parent,
  )
  return {
    end(answer, instance) {
      if (instance >= 0) span.setAttribute("slotbus.stdio.instance", instance)
      if (answer.error) {
        span.setAttribute("error.type", String(answer.error.code))
        span.setStatus({ code: SPAN_ERROR, message: answer.error.message })
      }
      span.end()
    },
  }
}
