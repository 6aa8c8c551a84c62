"""A client of Namra's public API (``namra.v1.AgentService``) over gRPC: ``Client`` (blocking) and ``AsyncClient``."""

from __future__ import annotations

import dataclasses
import os
from typing import AsyncIterator, Dict, Iterator, List, Mapping, Optional, Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from namra.v1 import agent_service_pb2 as api
from namra.v1 import agent_service_pb2_grpc as api_grpc
from namra.v1 import common_pb2, run_pb2

__all__ = ["AsyncClient", "Client", "Diagnostic", "NamraError", "Validation"]

_DETAIL_TYPES = [
    error_details_pb2.BadRequest, error_details_pb2.ErrorInfo, error_details_pb2.QuotaFailure, error_details_pb2.RetryInfo,
    error_details_pb2.ResourceInfo, error_details_pb2.PreconditionFailure, error_details_pb2.DebugInfo, common_pb2.Diagnostic,
]


class NamraError(Exception):
    """A call the API refused or could not serve: its gRPC status, message, and the ``google.rpc.Status`` details."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[object]):
        super().__init__(f"{message} ({code.name})")
        self.code = code
        self.message = message
        self.details = list(details)

    def detail(self, kind: type) -> Optional[object]:
        """The first detail of a type (``error_details_pb2.RetryInfo``, ...), or None."""
        return next((detail for detail in self.details if isinstance(detail, kind)), None)


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    """One problem of an agent definition, where it is."""

    severity: str
    code: str
    message: str
    file: str
    line: int
    column: int
    field_path: str
    hint: str


@dataclasses.dataclass(frozen=True)
class Validation:
    """Whether a definition is valid, every problem found, and its name@version and content hash."""

    valid: bool
    diagnostics: List[Diagnostic]
    ref: Optional[common_pb2.AgentRef]


def _error(error: grpc.RpcError) -> NamraError:
    details: List[object] = []
    for key, value in (error.trailing_metadata() or ()):
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for packed in status.details:
                details.append(_unpack(packed))
    return NamraError(error.code(), error.details() or "", details)


def _unpack(packed: any_pb2.Any) -> object:
    for kind in _DETAIL_TYPES:
        if packed.Is(kind.DESCRIPTOR):
            message = kind()
            packed.Unpack(message)
            return message
    return packed


def _agent(agent: str) -> common_pb2.AgentSource:
    """A reference (``name@version``), a file of YAML or TOML, or a definition's text."""
    if "\n" not in agent and os.path.isfile(agent):
        with open(agent, encoding="utf-8") as file:
            content = file.read()
        toml = agent.endswith(".toml")
        return common_pb2.AgentSource(inline=common_pb2.InlineAgent(
            content=content, file_name=os.path.basename(agent),
            format=common_pb2.AGENT_FORMAT_TOML if toml else common_pb2.AGENT_FORMAT_YAML))
    if "\n" not in agent and "@" in agent and ":" not in agent:
        return common_pb2.AgentSource(reference=agent)
    return common_pb2.AgentSource(inline=common_pb2.InlineAgent(content=agent, file_name="inline.yaml", format=common_pb2.AGENT_FORMAT_YAML))


def _validation(response: api.ValidateAgentResponse) -> Validation:
    diagnostics = [Diagnostic(common_pb2.Severity.Name(d.severity), d.code, d.message, d.file, d.line, d.column, d.field_path, d.hint)
                   for d in response.diagnostics]
    return Validation(response.valid, diagnostics, response.ref if response.HasField("ref") else None)


def _metadata(api_key: Optional[str], token: Optional[str]) -> List[tuple]:
    credential = token or api_key or os.environ.get("NAMRA_API_KEY")
    return [("authorization", f"Bearer {credential}")] if credential else []


def _channel_target(address: str) -> str:
    for prefix in ("http://", "https://"):
        if address.startswith(prefix):
            return address[len(prefix):]
    return address


class Client:
    """Blocking client. ``address`` is the orchestrator's gRPC address (``127.0.0.1:50051``); the API key or bearer token
    (else ``NAMRA_API_KEY``) goes with every call; ``timeout`` (seconds) is every call's deadline unless a call gives one."""

    def __init__(self, address: str = "127.0.0.1:50051", *, api_key: Optional[str] = None, token: Optional[str] = None,
                 timeout: Optional[float] = None, secure: bool = False):
        target = _channel_target(address)
        self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials()) if secure or address.startswith("https://") else grpc.insecure_channel(target)
        self._stub = api_grpc.AgentServiceStub(self._channel)
        self._metadata = _metadata(api_key, token)
        self._timeout = timeout

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request, timeout: Optional[float]):
        try:
            return method(request, metadata=self._metadata, timeout=timeout if timeout is not None else self._timeout)
        except grpc.RpcError as error:
            raise _error(error) from None

    def execute(self, agent: str, input: str, *, session_id: str = "", run_id: str = "", labels: Optional[Mapping[str, str]] = None,
                timeout: Optional[float] = None) -> run_pb2.Run:
        """Runs an agent to its end (or until it waits for approval) and returns the run's record."""
        request = api.ExecuteRequest(agent=_agent(agent), input=input, session_id=session_id, run_id=run_id, labels=dict(labels or {}))
        return self._call(self._stub.Execute, request, timeout).run

    def stream(self, agent: str, input: str, *, session_id: str = "", run_id: str = "", labels: Optional[Mapping[str, str]] = None,
               timeout: Optional[float] = None) -> Iterator[run_pb2.RunEvent]:
        """Runs an agent and yields its events as they happen (text deltas, tool calls, the end)."""
        request = api.ExecuteStreamRequest(agent=_agent(agent), input=input, session_id=session_id, run_id=run_id, labels=dict(labels or {}))
        try:
            for response in self._stub.ExecuteStream(request, metadata=self._metadata, timeout=timeout if timeout is not None else self._timeout):
                yield response.event
        except grpc.RpcError as error:
            raise _error(error) from None

    def get_run(self, run_id: str, *, timeout: Optional[float] = None) -> run_pb2.Run:
        return self._call(self._stub.GetRun, api.GetRunRequest(run_id=run_id), timeout).run

    def list_runs(self, *, agent_name: str = "", session_id: str = "", status: int = 0, page_size: int = 0, page_token: str = "",
                  full: bool = False, timeout: Optional[float] = None) -> api.ListRunsResponse:
        request = api.ListRunsRequest(agent_name=agent_name, session_id=session_id, status=status, page_size=page_size, page_token=page_token,
                                      view=api.RUN_VIEW_FULL if full else api.RUN_VIEW_BASIC)
        return self._call(self._stub.ListRuns, request, timeout)

    def cancel_run(self, run_id: str, reason: str = "", *, timeout: Optional[float] = None) -> run_pb2.Run:
        return self._call(self._stub.CancelRun, api.CancelRunRequest(run_id=run_id, reason=reason), timeout).run

    def approve(self, run_id: str, tool_call_ids: Sequence[str] = (), *, reason: str = "", decided_by: str = "",
                arguments_json: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> run_pb2.Run:
        request = api.ApproveToolCallsRequest(run_id=run_id, tool_call_ids=list(tool_call_ids), reason=reason, decided_by=decided_by,
                                              arguments_json=dict(arguments_json or {}))
        return self._call(self._stub.ApproveToolCalls, request, timeout).run

    def deny(self, run_id: str, tool_call_ids: Sequence[str] = (), *, reason: str = "", decided_by: str = "",
             timeout: Optional[float] = None) -> run_pb2.Run:
        request = api.DenyToolCallsRequest(run_id=run_id, tool_call_ids=list(tool_call_ids), reason=reason, decided_by=decided_by)
        return self._call(self._stub.DenyToolCalls, request, timeout).run

    def validate(self, agent: str, *, timeout: Optional[float] = None) -> Validation:
        """Validates a definition (a file or its text): every problem, with its file, line, column and hint."""
        return _validation(self._call(self._stub.ValidateAgent, api.ValidateAgentRequest(agent=_agent(agent).inline), timeout))

    def usage(self, *, timeout: Optional[float] = None) -> api.GetUsageResponse:
        return self._call(self._stub.GetUsage, api.GetUsageRequest(), timeout)

    def audit(self, after_sequence: int = 0, page_size: int = 0, *, timeout: Optional[float] = None) -> api.ListAuditResponse:
        return self._call(self._stub.ListAudit, api.ListAuditRequest(after_sequence=after_sequence, page_size=page_size), timeout)


class AsyncClient:
    """The asyncio flavour of ``Client``: the same methods, awaited; ``stream`` is an async iterator."""

    def __init__(self, address: str = "127.0.0.1:50051", *, api_key: Optional[str] = None, token: Optional[str] = None,
                 timeout: Optional[float] = None, secure: bool = False):
        target = _channel_target(address)
        self._channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials()) if secure or address.startswith("https://") else grpc.aio.insecure_channel(target)
        self._stub = api_grpc.AgentServiceStub(self._channel)
        self._metadata = _metadata(api_key, token)
        self._timeout = timeout

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method, request, timeout: Optional[float]):
        try:
            return await method(request, metadata=self._metadata, timeout=timeout if timeout is not None else self._timeout)
        except grpc.aio.AioRpcError as error:
            raise _error(error) from None

    async def execute(self, agent: str, input: str, *, session_id: str = "", run_id: str = "", labels: Optional[Mapping[str, str]] = None,
                      timeout: Optional[float] = None) -> run_pb2.Run:
        request = api.ExecuteRequest(agent=_agent(agent), input=input, session_id=session_id, run_id=run_id, labels=dict(labels or {}))
        return (await self._call(self._stub.Execute, request, timeout)).run

    async def stream(self, agent: str, input: str, *, session_id: str = "", run_id: str = "", labels: Optional[Mapping[str, str]] = None,
                     timeout: Optional[float] = None) -> AsyncIterator[run_pb2.RunEvent]:
        request = api.ExecuteStreamRequest(agent=_agent(agent), input=input, session_id=session_id, run_id=run_id, labels=dict(labels or {}))
        try:
            async for response in self._stub.ExecuteStream(request, metadata=self._metadata, timeout=timeout if timeout is not None else self._timeout):
                yield response.event
        except grpc.aio.AioRpcError as error:
            raise _error(error) from None

    async def get_run(self, run_id: str, *, timeout: Optional[float] = None) -> run_pb2.Run:
        return (await self._call(self._stub.GetRun, api.GetRunRequest(run_id=run_id), timeout)).run

    async def list_runs(self, *, agent_name: str = "", session_id: str = "", status: int = 0, page_size: int = 0, page_token: str = "",
                        full: bool = False, timeout: Optional[float] = None) -> api.ListRunsResponse:
        request = api.ListRunsRequest(agent_name=agent_name, session_id=session_id, status=status, page_size=page_size, page_token=page_token,
                                      view=api.RUN_VIEW_FULL if full else api.RUN_VIEW_BASIC)
        return await self._call(self._stub.ListRuns, request, timeout)

    async def cancel_run(self, run_id: str, reason: str = "", *, timeout: Optional[float] = None) -> run_pb2.Run:
        return (await self._call(self._stub.CancelRun, api.CancelRunRequest(run_id=run_id, reason=reason), timeout)).run

    async def approve(self, run_id: str, tool_call_ids: Sequence[str] = (), *, reason: str = "", decided_by: str = "",
                      arguments_json: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> run_pb2.Run:
        request = api.ApproveToolCallsRequest(run_id=run_id, tool_call_ids=list(tool_call_ids), reason=reason, decided_by=decided_by,
                                              arguments_json=dict(arguments_json or {}))
        return (await self._call(self._stub.ApproveToolCalls, request, timeout)).run

    async def deny(self, run_id: str, tool_call_ids: Sequence[str] = (), *, reason: str = "", decided_by: str = "",
                   timeout: Optional[float] = None) -> run_pb2.Run:
        request = api.DenyToolCallsRequest(run_id=run_id, tool_call_ids=list(tool_call_ids), reason=reason, decided_by=decided_by)
        return (await self._call(self._stub.DenyToolCalls, request, timeout)).run

    async def validate(self, agent: str, *, timeout: Optional[float] = None) -> Validation:
        return _validation(await self._call(self._stub.ValidateAgent, api.ValidateAgentRequest(agent=_agent(agent).inline), timeout))

    async def usage(self, *, timeout: Optional[float] = None) -> api.GetUsageResponse:
        return await self._call(self._stub.GetUsage, api.GetUsageRequest(), timeout)

    async def audit(self, after_sequence: int = 0, page_size: int = 0, *, timeout: Optional[float] = None) -> api.ListAuditResponse:
        return await self._call(self._stub.ListAudit, api.ListAuditRequest(after_sequence=after_sequence, page_size=page_size), timeout)
