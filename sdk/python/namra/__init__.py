"""Namra's Python package: tools written in Python (``@tool``, ``serve``) for Namra's tool executor.

    from namra import tool, serve

    @tool
    def custom_search(query: str) -> str:
        \"\"\"Search internal knowledge base\"\"\"
        ...

    serve([custom_search], port=50061)
"""

from namra.serving import ToolServer, serve, start
from namra.tools import Tool, ToolError, tool

__all__ = ["Tool", "ToolError", "ToolServer", "serve", "start", "tool"]
__version__ = "0.1.0"
