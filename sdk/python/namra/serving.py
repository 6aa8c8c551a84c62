"""Serving tools to Namra's tool executor: ``namra.serve(tools, port=...)`` runs a ``namra.v1.ToolProviderService``."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Iterable, List, Optional, Union

import grpc
from google.protobuf import json_format

from namra._health import health_pb2, health_pb2_grpc
from namra.tools import Call, Tool
from namra.v1 import common_pb2, tool_provider_service_pb2, tool_provider_service_pb2_grpc

__all__ = ["ToolServer", "serve", "start"]

_MAX_ARGUMENTS_BYTES = 1024 * 1024


class _Provider(tool_provider_service_pb2_grpc.ToolProviderServiceServicer):
    def __init__(self, tools: List[Tool]):
        self._tools = {tool.name: tool for tool in tools}

    async def DescribeTools(self, request, context):  # noqa: N802 - the gRPC method's name
        return tool_provider_service_pb2.DescribeToolsResponse(tools=[
            common_pb2.ToolDefinition(name=tool.name, description=tool.description, input_schema_json=json.dumps(tool.input_schema))
            for tool in self._tools.values()
        ])

    async def InvokeTool(self, request, context):  # noqa: N802
        tool = self._tools.get(request.name)
        if tool is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"No tool {request.name!r} here; the tools are {', '.join(self._tools) or 'none'}.")
        if len(request.arguments_json) > _MAX_ARGUMENTS_BYTES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"arguments_json: at most {_MAX_ARGUMENTS_BYTES:,} bytes.")
        try:
            arguments = json.loads(request.arguments_json or "{}")
        except json.JSONDecodeError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"arguments_json: not JSON ({error.msg} at {error.pos}).")
        if not isinstance(arguments, dict):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "arguments_json: a JSON object of the tool's arguments.")
        metadata = {key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}
        call = Call(
            name=request.name,
            call_id=request.call_id,
            idempotency_key=request.idempotency_key or metadata.get("idempotency-key", ""),
            run_id=request.run_id,
            agent_name=request.agent_name,
            traceparent=metadata.get("traceparent", ""),
            tracestate=metadata.get("tracestate", ""),
            options=json_format.MessageToDict(request.config) if request.HasField("config") else {},
        )
        # A call the caller abandons (its deadline, a cancelled run) cancels this task, and with it an async tool.
        result = await tool.invoke(arguments, call)
        return tool_provider_service_pb2.InvokeToolResponse(content=result.content, is_error=result.is_error)


class _Health(health_pb2_grpc.HealthServicer):
    async def Check(self, request, context):  # noqa: N802
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def Watch(self, request, context):  # noqa: N802
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        await asyncio.Event().wait()


class ToolServer:
    """A running tool provider: its address, and how to stop it."""

    def __init__(self, server: grpc.aio.Server, address: str):
        self._server = server
        self.address = address

    async def stop(self, grace: Optional[float] = 5.0) -> None:
        await self._server.stop(grace)

    async def wait(self) -> None:
        await self._server.wait_for_termination()


async def start(tools: Iterable[Union[Tool, object]], port: int = 0, host: str = "127.0.0.1", unix_socket: Optional[str] = None) -> ToolServer:
    """Starts serving ``tools`` on ``host:port`` (a free port when 0) or a Unix socket, with gRPC health; returns at once."""
    listed = [_as_tool(candidate) for candidate in tools]
    names = [tool.name for tool in listed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"two tools are named {', '.join(duplicates)}")
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)])
    tool_provider_service_pb2_grpc.add_ToolProviderServiceServicer_to_server(_Provider(listed), server)
    health_pb2_grpc.add_HealthServicer_to_server(_Health(), server)
    if unix_socket is not None:
        server.add_insecure_port(f"unix:{unix_socket}")
        address = f"unix:{unix_socket}"
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
        address = f"{host}:{bound}"
    await server.start()
    return ToolServer(server, address)


def serve(tools: Iterable[Union[Tool, object]], port: int = 50061, host: str = "127.0.0.1", unix_socket: Optional[str] = None) -> None:
    """Serves ``tools`` until SIGINT or SIGTERM, then drains calls in flight for up to five seconds."""

    async def main() -> None:
        server = await start(tools, port=port, host=host, unix_socket=unix_socket)
        print(f"namra: serving {', '.join(_as_tool(t).name for t in tools)} on {server.address}", flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop_signal, stopping.set)
        await stopping.wait()
        await server.stop(5.0)

    tools = list(tools)
    asyncio.run(main())


def _as_tool(candidate: object) -> Tool:
    if isinstance(candidate, Tool):
        return candidate
    raise TypeError(f"{candidate!r} is not a tool: decorate the function with @namra.tool")
