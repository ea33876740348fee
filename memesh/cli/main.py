"""The ``memesh`` command.

``memesh`` with no arguments serves MCP on stdio (what Claude Code runs); it must start
fast, so that path imports nothing but what it needs. Everything else goes through argh.

Exit codes (stable, documented in docs/cli.md):

==  ==========================================================
0   success (``status``: the daemon is running)
1   unexpected failure
2   usage error
3   the daemon is not running (or daemon mode is disabled)
4   the daemon is stale or unreachable; start-up failed
5   version mismatch between this memesh and the daemon
75  temporary: the daemon was draining or the outcome is unknown
77  unsafe MEMESH_HOME (permissions, ownership, symlink)
78  configuration error
==  ==========================================================
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        from memesh.mcp.entry import run

        return run()
    return run_cli(argv)


def build_parser():
    import argh

    from memesh.cli import config_cmds, daemon_cmds, graph_cmds, shell_cmds

    parser = argh.ArghParser(prog="memesh", description="One shared memory daemon (MCP, knowledge graph) for all your AI coding sessions.")
    parser.add_commands(
        daemon_cmds.COMMANDS,
        group_name="daemon",
        group_kwargs={"help": "inspect and control the shared daemon", "title": "daemon commands"},
    )
    parser.add_commands(
        graph_cmds.COMMANDS,
        group_name="graph",
        group_kwargs={"help": "import or export the knowledge graph (JSONL)", "title": "graph commands"},
    )
    parser.add_commands(shell_cmds.COMMANDS)
    parser.add_commands(
        config_cmds.COMMANDS,
        group_name="config",
        group_kwargs={"help": "show the effective settings", "title": "config commands"},
    )
    return parser


def run_cli(argv: list[str]) -> int:
    from memesh.errors import MemeshError

    parser = build_parser()
    try:
        parser.dispatch(argv=argv, output_file=sys.stdout)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MemeshError as exc:
        print(f"memesh: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
