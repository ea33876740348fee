"""``memesh shell``: an interactive Python console with the live shared objects bound.

Names: ``mesh`` (the handle), ``graph``, ``memory``, ``control``. Through the daemon
they are the daemon's live objects (every window's writes are visible at once); with
daemon mode disabled they work directly on the database, and the banner says so.
IPython is used when installed and the console is a terminal; ``--plain`` (or a
non-terminal stdin, e.g. a script piped in) uses the standard console.
"""
from __future__ import annotations

import code
import sys

import argh


def namespace(mesh) -> dict:
    names = {"mesh": mesh, "control": mesh.control, "graph": mesh.graph}
    memory = getattr(mesh, "memory", None)
    if memory is not None:
        names["memory"] = memory
    return names


def banner(mesh) -> str:
    if mesh.mode == "standalone":
        where = f"standalone (daemon mode disabled): objects work directly on {mesh.paths.db}"
    else:
        where = f"connected to the memesh daemon pid {mesh.daemon_pid} (version {mesh.hello.get('version')})"
    names = ", ".join(namespace(mesh))
    return f"memesh shell — {where}\nbound: {names}   e.g. graph.search_nodes('python'), control.status()"


@argh.arg("--plain", help="use the standard Python console even if IPython is installed")
def shell(*, plain: bool = False) -> None:
    """Open a Python console with the live shared objects (graph, memory, control) bound."""
    import memesh

    mesh = memesh.connect(name="memesh-shell", kind="repl")
    names = namespace(mesh)
    try:
        if not plain and sys.stdin.isatty():
            try:
                from IPython import start_ipython
            except ImportError:
                pass
            else:
                print(banner(mesh))
                start_ipython(argv=["--no-banner"], user_ns=names)
                return
        code.interact(banner=banner(mesh), local=names, exitmsg="")
    finally:
        mesh.close()


COMMANDS = [shell]
