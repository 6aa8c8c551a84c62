"""Client and AsyncClient against a real namra-server process: every public method, and errors with their details."""

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile

import grpc
import pytest
from google.rpc import error_details_pb2

from namra import AsyncClient, Client, NamraError
from namra._health import health_pb2, health_pb2_grpc
from namra.v1 import run_pb2

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SERVER = os.path.join(REPO, "services", "Namra.Server", "bin", "Release", "net10.0", "namra-server.dll")

ANSWERS = """name: answers
version: 1.0.0
llm:
  provider: scripted
  model: scripted
  script:
    - text: "It is 4."
"""

CAREFUL = """name: careful
version: 1.0.0
llm:
  provider: scripted
  model: scripted
  script:
    - tool_calls: [ { name: calculator, id: call_1, arguments: { expression: "2 + 2" } } ]
    - text: "It is 4."
tools:
  - { name: calculator, type: builtin.calculator, approval: always }
"""


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not os.path.exists(SERVER):
        pytest.skip("namra-server is not built (dotnet build -c Release)")
    grpc_port, http_port = _free_port(), _free_port()
    data = tempfile.mkdtemp(prefix="namra-python-client-")
    environment = dict(os.environ, Namra__Host__GrpcPort=str(grpc_port), Namra__Host__HttpPort=str(http_port), NAMRA_DATA_DIR=data,
                       Logging__LogLevel__Default="Warning")
    environment.pop("NAMRA_API_KEY", None)
    process = subprocess.Popen(["dotnet", SERVER], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"127.0.0.1:{grpc_port}"
    try:
        with grpc.insecure_channel(address) as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=60)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def test_every_method_of_the_api_has_a_method_in_both_clients():
    from namra.v1 import agent_service_pb2

    named = {"Execute": "execute", "ExecuteStream": "stream", "GetRun": "get_run", "CancelRun": "cancel_run", "ApproveToolCalls": "approve",
             "DenyToolCalls": "deny", "ListRuns": "list_runs", "ValidateAgent": "validate", "GetUsage": "usage", "ListAudit": "audit"}
    methods = [m.name for m in agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].methods]
    assert sorted(methods) == sorted(named), "a method of AgentService has no client method: add it to Client, AsyncClient and this test"
    for client in (Client, AsyncClient):
        assert all(callable(getattr(client, name, None)) for name in named.values())


def test_the_blocking_client_drives_every_public_method(server):
    with Client(server, timeout=30) as client:
        valid = client.validate(ANSWERS)
        invalid = client.validate("name: broken\nversion: 1.0.0\nllm: { provider: scripted, model: scripted }\ntemprature: 2\n")
        run = client.execute(ANSWERS, "What is 2 + 2?", session_id="py-session")
        events = list(client.stream(ANSWERS, "Again?", session_id="py-session"))
        read = client.get_run(run.run_id)
        listed = client.list_runs(session_id="py-session", full=True)
        waiting = client.execute(CAREFUL, "Add.")
        approved = client.approve(waiting.run_id, reason="fine", decided_by="pytest")
        second = client.execute(CAREFUL, "Add again.")
        denied = client.deny(second.run_id, reason="not today")
        third = client.execute(CAREFUL, "And again.")
        cancelled = client.cancel_run(third.run_id, "changed my mind")
        usage = client.usage()
        audit = client.audit()

    assert valid.valid and valid.ref.name == "answers"
    assert not invalid.valid
    problem = next(d for d in invalid.diagnostics if d.field_path == "temprature")
    assert (problem.line, problem.column, problem.severity) == (4, 1, "SEVERITY_ERROR")
    assert (problem.code, problem.file) == ("NAMRA0101", "inline.yaml") and "known fields" in problem.hint
    assert (run.status, run.answer) == (run_pb2.RUN_STATUS_COMPLETED, "It is 4.")
    assert events[0].WhichOneof("event") == "run_started" and events[-1].run_completed.answer == "It is 4."
    assert read.run_id == run.run_id
    assert len(listed.runs) == 2 and all(r.answer == "It is 4." for r in listed.runs)
    assert waiting.status == run_pb2.RUN_STATUS_AWAITING_APPROVAL
    assert approved.approvals[0].decided_by == "pytest"
    assert denied.approvals[0].state == run_pb2.APPROVAL_STATE_DENIED
    assert cancelled.cancel_requested
    assert [p.period for p in usage.periods] == ["day", "month"]
    assert isinstance(audit.more, bool)


def test_errors_carry_their_status_and_details(server):
    with Client(server, timeout=30) as client:
        with pytest.raises(NamraError) as missing:
            client.get_run("no-such-run")
        with pytest.raises(NamraError) as bad:
            client.list_runs(page_size=5000)

    assert missing.value.code == grpc.StatusCode.NOT_FOUND
    assert missing.value.detail(error_details_pb2.ResourceInfo) is not None
    assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.detail(error_details_pb2.BadRequest).field_violations[0].field == "page_size"


def test_the_asyncio_client_runs_and_streams(server):
    async def main():
        async with AsyncClient(server, timeout=30) as client:
            run = await client.execute(ANSWERS, "What is 2 + 2?")
            events = [event async for event in client.stream(ANSWERS, "Stream it.")]
            read = await client.get_run(run.run_id)
            with pytest.raises(NamraError) as missing:
                await client.get_run("no-such-run")
            return run, events, read, missing.value

    run, events, read, missing = asyncio.run(main())

    assert run.answer == "It is 4." and read.run_id == run.run_id
    assert events[-1].run_completed.answer == "It is 4."
    assert missing.code == grpc.StatusCode.NOT_FOUND
