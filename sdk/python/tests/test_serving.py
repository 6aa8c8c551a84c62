"""serve/start: a ToolProviderService over a real socket, as Namra's tool executor calls it."""

import asyncio
import json

import grpc
import pytest

from namra import start, tool
from namra._health import health_pb2, health_pb2_grpc
from namra.v1 import tool_provider_service_pb2 as provider
from namra.v1 import tool_provider_service_pb2_grpc as provider_grpc


@tool
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


@tool
async def wait(seconds: float) -> str:
    """Waits, then says so."""
    await asyncio.sleep(seconds)
    return "waited"


@tool
def broken(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(reason)


def run(scenario):
    async def main():
        server = await start([add, wait, broken])
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                await scenario(provider_grpc.ToolProviderServiceStub(channel), channel)
        finally:
            await server.stop(0)

    asyncio.run(main())


def test_it_describes_its_tools_with_their_schemas():
    async def scenario(stub, _):
        described = await stub.DescribeTools(provider.DescribeToolsRequest())
        tools = {t.name: t for t in described.tools}
        assert sorted(tools) == ["add", "broken", "wait"]
        assert tools["add"].description == "Adds two numbers."
        assert json.loads(tools["add"].input_schema_json)["required"] == ["a", "b"]

    run(scenario)


def test_it_runs_a_call_and_a_failing_tool_is_an_error_result():
    async def scenario(stub, _):
        added = await stub.InvokeTool(provider.InvokeToolRequest(name="add", arguments_json='{"a": 40, "b": 2}', call_id="c1"))
        failed = await stub.InvokeTool(provider.InvokeToolRequest(name="broken", arguments_json='{"reason": "disk full"}'))
        assert (added.content, added.is_error) == ("42", False)
        assert (failed.content, failed.is_error) == ("RuntimeError: disk full", True)

    run(scenario)


def test_bad_calls_are_refused_with_the_right_status_and_the_server_keeps_serving():
    async def scenario(stub, _):
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.InvokeTool(provider.InvokeToolRequest(name="nope", arguments_json="{}"))
        with pytest.raises(grpc.aio.AioRpcError) as not_json:
            await stub.InvokeTool(provider.InvokeToolRequest(name="add", arguments_json="{oops"))
        with pytest.raises(grpc.aio.AioRpcError) as not_object:
            await stub.InvokeTool(provider.InvokeToolRequest(name="add", arguments_json="[1, 2]"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        assert "No tool 'nope'" in unknown.value.details()
        assert not_json.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert not_object.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        still = await stub.InvokeTool(provider.InvokeToolRequest(name="add", arguments_json='{"a": 1, "b": 1}'))
        assert still.content == "2"

    run(scenario)


def test_a_deadline_past_cancels_a_waiting_tool_and_health_serves():
    async def scenario(stub, channel):
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.InvokeTool(provider.InvokeToolRequest(name="wait", arguments_json='{"seconds": 30}'), timeout=0.2)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert health.status == health_pb2.HealthCheckResponse.SERVING

    run(scenario)
