"""A module's ``@tool`` functions as a plugin of Namra's tool executor, which starts it for a ``type: python`` entry:

    python3 -m namra.plugin --module tools/search.py --socket /tmp/namra-py-x/plugin.sock

It imports the module (a file, or a module name on ``sys.path``), serves every ``@tool`` defined at its top level
over the Unix socket, then writes one line, ``namra-plugin-ready``, to standard output: the tool executor waits for
it. What the module and its tools print goes to standard error. It stops when its standard input closes (the tool
executor stopped it, or died) or on SIGTERM, letting calls in flight finish for two seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import signal
import sys
import traceback
import types
from pathlib import Path
from typing import List, TextIO

from namra.serving import start
from namra.tools import Tool

__all__ = ["READY", "load_tools", "main"]

#: The line written to standard output once the tools are served.
READY = "namra-plugin-ready"


def load_module(module: str) -> types.ModuleType:
    """Imports ``module``: a ``.py`` file (its folder first on ``sys.path``, for its own imports), or a module name."""
    if module.endswith(".py") or "/" in module:
        path = Path(module).resolve()
        if not path.is_file():
            raise LookupError(f"there is no file {module} (looked for {path})")
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise LookupError(f"{module} cannot be imported as a Python module")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded
        spec.loader.exec_module(loaded)
        return loaded
    return importlib.import_module(module)


def load_tools(module: str) -> List[Tool]:
    """The ``@tool`` functions defined at the top level of ``module``, by name."""
    loaded = load_module(module)
    tools = {id(value): value for value in vars(loaded).values() if isinstance(value, Tool)}
    if not tools:
        raise LookupError(f"{module} defines no tools: decorate its functions with @namra.tool")
    return sorted(tools.values(), key=lambda t: t.name)


async def _serve(tools: List[Tool], socket: str, protocol: TextIO) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stopping.set)

    def read_input() -> None:
        try:
            more = os.read(0, 4096)
        except OSError:
            more = b""
        if not more:
            loop.remove_reader(0)
            stopping.set()

    loop.add_reader(0, read_input)
    server = await start(tools, unix_socket=socket)
    # On a line of its own, whatever a C extension or a child process left on the line before.
    print(f"\n{READY}", file=protocol, flush=True)
    await stopping.wait()
    await server.stop(2.0)


def main(argv: "List[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m namra.plugin", description="Serves a module's @tool functions to Namra's tool executor.")
    parser.add_argument("--module", required=True, help="a .py file, or a module name the interpreter can import")
    parser.add_argument("--socket", required=True, help="the Unix socket to serve on")
    arguments = parser.parse_args(argv)
    # Standard output is the tool executor's (it waits for READY there); the module's and the tools' print() go with their logs.
    protocol, sys.stdout = sys.stdout, sys.stderr
    try:
        tools = load_tools(arguments.module)
    except Exception as error:  # noqa: BLE001 - whatever the module raises, the tool executor reports it (its last line)
        traceback.print_exc(file=sys.stderr)
        where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        at = f" (at {Path(where.filename).name}:{where.lineno})" if where is not None and not isinstance(error, (LookupError, SyntaxError)) else ""
        print(f"namra.plugin: cannot load {arguments.module}: {type(error).__name__}: {error}{at}", file=sys.stderr, flush=True)
        return 3
    asyncio.run(_serve(tools, arguments.socket, protocol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
