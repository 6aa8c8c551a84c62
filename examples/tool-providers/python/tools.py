"""Two tools in Python. An agent lists this module as a `python` tool (examples/agents/text_tools.yaml), and the tool
executor runs it; or it runs as a tool provider of its own, which agents list as a `grpc` tool:

    sudo apt-get install python3-grpcio python3-protobuf
    PYTHONPATH=sdk/python PORT=50061 /usr/bin/python3 examples/tool-providers/python/tools.py
"""

import os
from typing import Literal

from namra import ToolError, serve, tool

_METERS = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048}


@tool
def word_count(text: str) -> dict:
    """Counts the words, lines and characters of a text.

    :param text: the text to count
    """
    return {"words": len(text.split()), "lines": text.count("\n") + 1 if text else 0, "characters": len(text)}


@tool
def convert_length(value: float, unit_from: Literal["m", "km", "mi", "ft"], unit_to: str) -> dict:
    """Converts a length between metres, kilometres, miles and feet.

    :param value: the length
    :param unit_from: its unit
    :param unit_to: the unit wanted (m, km, mi or ft)
    """
    if unit_to not in _METERS:
        raise ToolError(f"Unknown unit {unit_to!r}; use m, km, mi or ft.")
    return {"value": round(value * _METERS[unit_from] / _METERS[unit_to], 6), "unit": unit_to}


if __name__ == "__main__":
    serve([word_count, convert_length], port=int(os.environ.get("PORT", "50061")))
