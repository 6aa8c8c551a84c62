"""Python functions as Namra tools: ``@tool`` derives a tool's name, description and JSON Schema from the function."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import inspect
import json
import traceback
import types
import typing
from typing import Any, Callable, Dict, List, Optional

__all__ = ["Call", "Tool", "ToolError", "current_call", "tool"]

_MAX_RESULT_CHARS = 1_000_000


@dataclasses.dataclass(frozen=True)
class Call:
    """The call a tool is running for, as the tool executor sent it."""

    #: The tool called.
    name: str = ""
    #: The model's call id.
    call_id: str = ""
    #: The same for every delivery of this call (a call sent again after an interruption), unique across runs:
    #: pass it to systems that deduplicate (an ``Idempotency-Key`` header, a unique column).
    idempotency_key: str = ""
    #: The run making the call; empty outside a run.
    run_id: str = ""
    #: The agent making the call.
    agent_name: str = ""
    #: The W3C trace context of the call (``00-<trace id>-<span id>-<flags>``), to join the run's trace; empty if none.
    traceparent: str = ""
    #: The W3C ``tracestate`` that goes with it.
    tracestate: str = ""
    #: The agent entry's ``config.options``.
    options: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def trace_id(self) -> str:
        """The run's trace id (32 hex digits) from ``traceparent``; empty if none."""
        parts = self.traceparent.split("-")
        return parts[1] if len(parts) == 4 else ""


_current_call: "contextvars.ContextVar[Call]" = contextvars.ContextVar("namra_current_call", default=Call())


def current_call() -> Call:
    """The call the running tool serves (its idempotency key, run, trace context); empty fields outside a call."""
    return _current_call.get()


class ToolError(Exception):
    """Raise it from a tool to give the model a message of your own as the error result."""


@dataclasses.dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and the JSON Schema of its arguments."""

    name: str
    description: str
    input_schema: Dict[str, Any]
    function: Callable[..., Any]
    show_tracebacks: bool = False

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def bind(self, arguments: Dict[str, Any]) -> Dict[str, Any]:
        """The call's keyword arguments, each converted to its parameter's type (dataclasses built from objects)."""
        hints = typing.get_type_hints(self.function)
        bound = {}
        for name, value in arguments.items():
            if name not in self.input_schema["properties"]:
                raise ToolError(f"{self.name} has no argument {name!r}")
            bound[name] = _convert(value, hints.get(name, Any))
        missing = [name for name in self.input_schema.get("required", []) if name not in bound]
        if missing:
            raise ToolError(f"{self.name} needs the argument(s) {', '.join(missing)}")
        return bound

    async def invoke(self, arguments: Dict[str, Any], call: Optional[Call] = None) -> "Result":
        """Runs the function for ``call`` (what ``current_call()`` returns in it); an exception becomes an error result the model reads."""
        if call is not None:
            _current_call.set(call)
        try:
            bound = self.bind(arguments)
            if self.is_async:
                value = await self.function(**bound)
            else:
                # In a worker thread, seeing this task's context (current_call()).
                context = contextvars.copy_context()
                value = await asyncio.get_running_loop().run_in_executor(None, lambda: context.run(self.function, **bound))
            return Result(_text(value), False)
        except asyncio.CancelledError:
            raise
        except ToolError as error:
            return Result(str(error), True)
        except Exception as error:  # noqa: BLE001 - every failure of a tool is the model's to read
            message = f"{type(error).__name__}: {error}"
            if self.show_tracebacks:
                message += "\n" + "".join(traceback.format_exception(error))
            return Result(message, True)


@dataclasses.dataclass(frozen=True)
class Result:
    """What a call gives the model: text (JSON for structured values), and whether it is an error."""

    content: str
    is_error: bool


def tool(function: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None, description: Optional[str] = None,
         show_tracebacks: bool = False) -> Any:
    """Makes a function a tool. Usable bare (``@tool``) or with settings (``@tool(name="search")``).

    The name is the function's unless given; the description is the docstring's first paragraph; each parameter's
    type hint gives its schema (str, int, float, bool, lists, dicts, Optional, Literal, enums, dataclasses and
    TypedDicts), a default makes it optional, and ``:param NAME: text`` (or ``NAME: text`` under ``Args:``) in the
    docstring describes it.
    """

    def make(target: Callable[..., Any]) -> Tool:
        summary, parameters = _docstring(inspect.getdoc(target) or "")
        return Tool(
            name=name or target.__name__,
            description=description or summary or target.__name__.replace("_", " "),
            input_schema=_arguments_schema(target, parameters),
            function=target,
            show_tracebacks=show_tracebacks,
        )

    return make(function) if function is not None else make


def _arguments_schema(function: Callable[..., Any], described: Dict[str, str]) -> Dict[str, Any]:
    hints = typing.get_type_hints(function)
    properties: Dict[str, Any] = {}
    required: List[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{function.__name__}: a tool's arguments are named; *{parameter.name} and **{parameter.name} cannot be described")
        schema = _schema(hints.get(parameter.name, Any), f"{function.__name__}.{parameter.name}")
        if parameter.name in described:
            schema = {**schema, "description": described[parameter.name]}
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
        elif parameter.default is None or isinstance(parameter.default, (str, int, float, bool)):
            schema = {**schema, "default": parameter.default}
        properties[parameter.name] = schema
    result: Dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        result["required"] = required
    return result


def _schema(hint: Any, where: str) -> Dict[str, Any]:
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is type(None):
        return {"type": "null"}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema(argument, where) for argument in arguments]}
    if origin is typing.Literal:
        return {"enum": list(arguments)}
    if origin in (list, List, typing.Sequence, tuple) or hint in (list, tuple):
        item = arguments[0] if arguments else Any
        return {"type": "array", "items": _schema(item, where)}
    if origin in (dict, Dict, typing.Mapping) or hint is dict:
        value = arguments[1] if len(arguments) == 2 else Any
        return {"type": "object", "additionalProperties": _schema(value, where)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if dataclasses.is_dataclass(hint):
        fields = typing.get_type_hints(hint)
        required = [field.name for field in dataclasses.fields(hint)
                    if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]  # type: ignore[misc]
        schema: Dict[str, Any] = {"type": "object", "properties": {f.name: _schema(fields[f.name], f"{where}.{f.name}") for f in dataclasses.fields(hint)},
                                  "additionalProperties": False}
        if required:
            schema["required"] = required
        return schema
    if typing.is_typeddict(hint):
        fields = typing.get_type_hints(hint)
        schema = {"type": "object", "properties": {key: _schema(value, f"{where}.{key}") for key, value in fields.items()}, "additionalProperties": False}
        required = sorted(getattr(hint, "__required_keys__", fields.keys()))
        if required:
            schema["required"] = required
        return schema
    raise TypeError(f"{where}: cannot describe the type {hint!r} to a model; use str, int, float, bool, lists, dicts, Optional, Literal, enums, dataclasses or TypedDicts")


def _convert(value: Any, hint: Any) -> Any:
    """A JSON value as the parameter's type: dataclasses and enums built, lists and dicts converted item by item."""
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        for option in arguments:
            if option is not type(None):
                try:
                    return _convert(value, option)
                except (TypeError, ValueError, ToolError):
                    continue
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        fields = typing.get_type_hints(hint)
        return hint(**{key: _convert(item, fields.get(key, Any)) for key, item in value.items()})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if origin in (list, List, typing.Sequence) and isinstance(value, list):
        return [_convert(item, arguments[0] if arguments else Any) for item in value]
    if origin is tuple and isinstance(value, list):
        return tuple(_convert(item, arguments[0] if arguments else Any) for item in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _text(value: Any) -> str:
    """A tool's return value as the model reads it: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=_json_default, ensure_ascii=False)
    return text if len(text) <= _MAX_RESULT_CHARS else text[:_MAX_RESULT_CHARS] + "\n[cut at 1,000,000 characters]"


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _docstring(text: str) -> "tuple[str, Dict[str, str]]":
    """The first paragraph, and parameter descriptions written ``:param NAME: text`` or under ``Args:``."""
    paragraphs = text.strip().split("\n\n")
    summary = " ".join(paragraphs[0].split()) if paragraphs and paragraphs[0] and not paragraphs[0].lstrip().startswith((":param", "Args:")) else ""
    described: Dict[str, str] = {}
    in_args = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(":param "):
            name, _, rest = stripped[len(":param "):].partition(":")
            described[name.strip().split()[-1]] = rest.strip()
        elif stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
        elif in_args and ":" in stripped and not stripped.endswith(":"):
            name, _, rest = stripped.partition(":")
            described[name.split("(")[0].strip()] = rest.strip()
        elif in_args and not stripped:
            in_args = False
    return summary, described
