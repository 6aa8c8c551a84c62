"""python3 -m namra.plugin: a module's tools served over a Unix socket, as the tool executor starts it."""

import json
import os
import subprocess
import sys
import textwrap

import grpc
import pytest

from namra.plugin import READY
from namra.v1 import tool_provider_service_pb2 as provider
from namra.v1 import tool_provider_service_pb2_grpc as provider_grpc

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODULE = textwrap.dedent('''
    import asyncio
    from namra import current_call, tool
    import helper  # a module beside this one

    @tool
    def who(note: str) -> dict:
        """Says which call it serves."""
        call = current_call()
        return {"note": helper.shout(note), "key": call.idempotency_key, "run": call.run_id, "agent": call.agent_name,
                "call": call.call_id, "trace": call.trace_id, "options": call.options}

    @tool
    async def later(seconds: float) -> str:
        """Waits, then names its run."""
        await asyncio.sleep(seconds)
        return current_call().run_id

    not_a_tool = 42

    if __name__ == "__main__":
        raise SystemExit("a plugin's module is imported, not run")
''')


def start_plugin(tmp_path, module_text, name="tools.py"):
    (tmp_path / name).write_text(module_text)
    (tmp_path / "helper.py").write_text("print('helper loaded')\n\ndef shout(text):\n    return text.upper()\n")
    socket = str(tmp_path / "plugin.sock")
    process = subprocess.Popen(
        [sys.executable, "-m", "namra.plugin", "--module", str(tmp_path / name), "--socket", socket],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": PACKAGE, "PYTHONDONTWRITEBYTECODE": "1"})
    return process, socket


def ready(process):
    """Whether the plugin wrote its ready line (on a line of its own) before its output ended."""
    return any(line.strip() == READY for line in iter(process.stdout.readline, ""))


def test_it_serves_the_modules_tools_and_they_see_their_call(tmp_path):
    process, socket = start_plugin(tmp_path, MODULE)
    try:
        assert ready(process)
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            stub = provider_grpc.ToolProviderServiceStub(channel)
            described = stub.DescribeTools(provider.DescribeToolsRequest())
            assert [t.name for t in described.tools] == ["later", "who"]
            trace = "0af7651916cd43dd8448eb211c80319c"
            request = provider.InvokeToolRequest(name="who", arguments_json='{"note": "hi"}', call_id="toolu_1",
                                                 idempotency_key="run-1:toolu_1", run_id="run-1", agent_name="support")
            request.config.update({"region": "eu"})
            result = stub.InvokeTool(request, metadata=[("traceparent", f"00-{trace}-b7ad6b7169203331-01")])
            assert not result.is_error, result.content
            assert json.loads(result.content) == {"note": "HI", "key": "run-1:toolu_1", "run": "run-1", "agent": "support",
                                                  "call": "toolu_1", "trace": trace, "options": {"region": "eu"}}
            later = stub.InvokeTool(provider.InvokeToolRequest(name="later", arguments_json='{"seconds": 0.01}', run_id="run-2"))
            assert later.content == "run-2"
    finally:
        process.stdin.close()
    assert process.wait(timeout=10) == 0, process.stderr.read()


def test_it_stops_when_its_input_closes_and_on_sigterm(tmp_path):
    process, _ = start_plugin(tmp_path, MODULE)
    assert ready(process)
    process.terminate()
    assert process.wait(timeout=10) == 0
    process.stdin.close()


@pytest.mark.parametrize("text, expected", [
    ("import no_such_module_here\n", "ModuleNotFoundError: No module named 'no_such_module_here'"),
    ("def broken(:\n", "SyntaxError"),
    ("x = 1\n", "defines no tools: decorate its functions with @namra.tool"),
    ("raise RuntimeError('needs SEARCH_TOKEN')\n", "RuntimeError: needs SEARCH_TOKEN (at tools.py:1)"),
])
def test_a_module_that_cannot_load_exits_with_3_and_says_why_last(tmp_path, text, expected):
    process, _ = start_plugin(tmp_path, text)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 3
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"namra.plugin: cannot load {tmp_path / 'tools.py'}: "), last
    assert expected in last, last


def test_a_module_name_is_imported_from_the_path(tmp_path):
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "__init__.py").write_text("")
    (tmp_path / "acme" / "search.py").write_text("from namra import tool\n\n@tool\ndef find(q: str) -> str:\n    '''Finds.'''\n    return q\n")
    socket = str(tmp_path / "p.sock")
    process = subprocess.Popen([sys.executable, "-m", "namra.plugin", "--module", "acme.search", "--socket", socket],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{PACKAGE}:{tmp_path}", "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        assert ready(process)
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            found = provider_grpc.ToolProviderServiceStub(channel).InvokeTool(provider.InvokeToolRequest(name="find", arguments_json='{"q": "x"}'))
            assert found.content == "x"
    finally:
        process.stdin.close()
        process.wait(timeout=10)
