"""Tools for the tool executor's tests of `python` entries: what a call and its process see, and a call that waits."""

import asyncio
import os

from namra import ToolError, current_call, tool


@tool
def echo_call(note: str = "") -> dict:
    """Says which call it serves and from which process."""
    call = current_call()
    return {"note": note, "pid": os.getpid(), "key": call.idempotency_key, "run": call.run_id, "agent": call.agent_name,
            "call": call.call_id, "trace": call.trace_id, "options": call.options}


@tool
def environment() -> dict:
    """The plugin process's environment."""
    return dict(os.environ)


@tool
async def hold(pid_file: str, seconds: float) -> str:
    """Writes its process id to a file, then waits."""
    with open(pid_file, "w", encoding="utf-8") as file:
        file.write(str(os.getpid()))
    await asyncio.sleep(seconds)
    return "held"


@tool
def refuse(reason: str) -> str:
    """Always refuses."""
    raise ToolError(reason)
