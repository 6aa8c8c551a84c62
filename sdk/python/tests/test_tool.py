"""@tool: what the model is told about a function, and how a call reaches it."""

import asyncio
import dataclasses
import enum
import json
from typing import Dict, List, Literal, Optional, TypedDict

import pytest

from namra import ToolError, tool


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@dataclasses.dataclass
class Address:
    city: str
    zip_code: Optional[str] = None


class Filters(TypedDict):
    tags: List[str]
    since: int


def test_the_name_description_and_schema_come_from_the_signature_and_docstring():
    @tool
    def custom_search(query: str, scope: Literal["wiki", "tickets"] = "wiki", limit: int = 5, exact: bool = False,
                      weight: float = 1.0, labels: Optional[Dict[str, str]] = None) -> str:
        """Search internal knowledge base.

        More words that are not the summary.

        :param query: what to look for
        :param limit: most results
        """
        return query

    assert custom_search.name == "custom_search"
    assert custom_search.description == "Search internal knowledge base."
    assert custom_search.input_schema == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what to look for"},
            "scope": {"enum": ["wiki", "tickets"], "default": "wiki"},
            "limit": {"type": "integer", "description": "most results", "default": 5},
            "exact": {"type": "boolean", "default": False},
            "weight": {"type": "number", "default": 1.0},
            "labels": {"anyOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "null"}], "default": None},
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def test_dataclasses_typeddicts_enums_and_lists_are_described_and_built():
    @tool(name="ship", description="Ships an order.")
    def ship(address: Address, filters: Filters, priority: Priority, items: List[int]) -> dict:
        """Args:
            address: where to
        """
        return {"city": address.city, "zip": address.zip_code, "priority": priority, "items": items, "tags": filters["tags"]}

    schema = ship.input_schema["properties"]
    assert schema["address"] == {
        "type": "object", "properties": {"city": {"type": "string"}, "zip_code": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "additionalProperties": False, "required": ["city"], "description": "where to",
    }
    assert schema["filters"]["required"] == ["since", "tags"]
    assert schema["priority"] == {"enum": ["low", "high"]}
    assert schema["items"] == {"type": "array", "items": {"type": "integer"}}

    result = asyncio.run(ship.invoke({"address": {"city": "Oslo"}, "filters": {"tags": ["a"], "since": 1}, "priority": "high", "items": [1, 2]}))

    assert not result.is_error
    assert json.loads(result.content) == {"city": "Oslo", "zip": None, "priority": "high", "items": [1, 2], "tags": ["a"]}


def test_async_tools_run_and_structured_results_are_json():
    @tool
    async def lookup(key: str) -> dict:
        """Looks a key up."""
        await asyncio.sleep(0)
        return {"key": key, "found": True}

    result = asyncio.run(lookup.invoke({"key": "k1"}))

    assert lookup.is_async
    assert (result.is_error, json.loads(result.content)) == (False, {"key": "k1", "found": True})


def test_an_exception_is_an_error_result_without_its_traceback_unless_asked():
    @tool
    def fails(x: int) -> str:
        """Fails."""
        raise ValueError(f"no {x}")

    @tool(show_tracebacks=True)
    def fails_loudly(x: int) -> str:
        """Fails, saying where."""
        raise ValueError(f"no {x}")

    @tool
    def refuses(x: int) -> str:
        """Refuses in its own words."""
        raise ToolError("x must be even")

    quiet = asyncio.run(fails.invoke({"x": 3}))
    loud = asyncio.run(fails_loudly.invoke({"x": 3}))
    own = asyncio.run(refuses.invoke({"x": 3}))

    assert (quiet.is_error, quiet.content) == (True, "ValueError: no 3")
    assert loud.is_error and "Traceback" in loud.content and "fails_loudly" in loud.content
    assert (own.is_error, own.content) == (True, "x must be even")


def test_missing_and_unknown_arguments_are_error_results():
    @tool
    def add(a: int, b: int = 1) -> int:
        """Adds."""
        return a + b

    assert asyncio.run(add.invoke({"a": 2})).content == "3"
    assert asyncio.run(add.invoke({})).content == "add needs the argument(s) a"
    assert asyncio.run(add.invoke({"a": 1, "c": 2})).content == "add has no argument 'c'"


def test_a_type_that_cannot_be_described_is_refused_when_the_tool_is_made():
    with pytest.raises(TypeError, match="cannot describe the type"):
        @tool
        def opens(handle: object) -> str:
            """Takes what a model cannot send."""
            return ""

    with pytest.raises(TypeError, match="arguments are named"):
        @tool
        def many(*values: int) -> int:
            """Takes any number."""
            return 0


def test_cancelling_the_call_cancels_an_async_tool():
    cancelled = []

    @tool
    async def slow(seconds: float) -> str:
        """Waits."""
        try:
            await asyncio.sleep(seconds)
            return "done"
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        task = asyncio.create_task(slow.invoke({"seconds": 30}))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cancelled == [True]
