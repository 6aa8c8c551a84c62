"""Namra's Python package: tools written in Python (``@tool``, ``serve``) for Namra's tool executor, and a client of its
public API (``Client``, ``AsyncClient``).

    from namra import tool, serve

    @tool
    def custom_search(query: str) -> str:
        \"\"\"Search internal knowledge base\"\"\"
        ...

    serve([custom_search], port=50061)
"""

from namra.client import AsyncClient, Client, Diagnostic, NamraError, Validation
from namra.serving import ToolServer, serve, start
from namra.tools import Call, Tool, ToolError, current_call, tool

__all__ = ["AsyncClient", "Call", "Client", "Diagnostic", "NamraError", "Tool", "ToolError", "ToolServer", "Validation", "current_call", "serve",
           "start", "tool"]
__version__ = "0.1.0"
