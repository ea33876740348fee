"""The ``memesh`` command.

``memesh`` with no arguments serves MCP on stdio (what Claude Code runs); it must start
fast, so that path imports nothing but what it needs. Everything else goes through argh.

Exit codes (stable, documented in docs/cli.md):

===  ==========================================================
0    success (``status``: the daemon is running)
1    unexpected failure
2    usage error (a group without its command prints the group's help)
3    the daemon is not running (or daemon mode is disabled)
4    the daemon is stale or unreachable; start-up failed
5    version mismatch between this memesh and the daemon
6    ``daemon run``: another daemon already serves this home
65   the input data is not acceptable (``graph import``)
66   the input file cannot be read
73   the output file cannot be written
74   the disk holding the database is full (nothing was written)
75   temporary: the daemon was draining or the outcome is unknown
77   unsafe MEMESH_HOME (not a directory, permissions, ownership, symlink)
78   configuration error
141  the output pipe was closed early (``| head``); nothing is printed
===  ==========================================================

Every failure is one line on stderr that starts with ``memesh:``; no traceback.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        from memesh.mcp.entry import run

        return run()
    if argv == ["hook", "prompt"]:   # runs on every prompt: skip argh and its imports
        from memesh.a2a.hook import main as hook_prompt

        return hook_prompt()
    return run_cli(argv)


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a tool killed by the closed pipe would return
GROUPS = ("daemon", "graph", "storage", "config", "a2a", "hook")


def _parser_class():
    import argh

    class Parser(argh.ArghParser):
        """argh's parser with argparse's usage errors as one ``memesh:`` line (exit 2)."""

        def error(self, message: str):
            where = self.prog.partition(" ")[2]
            prefix = f"{where}: " if where else ""
            self.exit(2, f"memesh: {prefix}{message} (see `{self.prog} --help`)\n")

    return Parser


def build_parser():
    from memesh.a2a import cli as a2a_cli
    from memesh.cli import config_cmds, daemon_cmds, graph_cmds, shell_cmds, storage_cmds

    parser = _parser_class()(prog="memesh", description="One shared memory daemon (MCP, knowledge graph) for all your AI coding sessions.")
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
    parser.add_commands(
        storage_cmds.COMMANDS,
        group_name="storage",
        group_kwargs={"help": "show the storage in use, copy it to another (SQLite, PostgreSQL)", "title": "storage commands"},
    )
    parser.add_commands(shell_cmds.COMMANDS)
    parser.add_commands(
        a2a_cli.COMMANDS,
        group_name="a2a",
        group_kwargs={"help": "the A2A hub: agents (windows), tasks, the token", "title": "a2a commands"},
    )
    parser.add_commands(
        [prompt],
        group_name="hook",
        group_kwargs={"help": "Claude Code hook commands", "title": "hook commands"},
    )
    parser.add_commands(
        config_cmds.COMMANDS,
        group_name="config",
        group_kwargs={"help": "show the effective settings", "title": "config commands"},
    )
    _keep_declared_options(parser)
    return parser


def prompt() -> None:
    """UserPromptSubmit hook for Claude Code: print this directory's pending A2A tasks (nothing if none)."""
    from memesh.a2a.hook import main as hook_main

    hook_main()


def _keep_declared_options(parser) -> None:
    """Where a command names its options (``@argh.arg("-n", "--lines")``), only those names.

    argh also derives ``-x``/``--name`` from each keyword argument and adds them to the
    declared ones, which would make ``logs -l`` and ``status -a`` exist beside what the
    reference documents.
    """
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _keep_declared_options(sub)
    function = parser._defaults.get("function")
    declared = {spec.func_arg_name: spec.cli_arg_names for spec in getattr(function, "argh_args", ())}
    for action in parser._actions:
        names = declared.get(action.dest)
        if not names or not all(name.startswith("-") for name in names):
            continue
        for option in action.option_strings:
            if option not in names:
                parser._option_string_actions.pop(option, None)
        action.option_strings[:] = [name for name in names if name in action.option_strings]


def group_parser(parser, name: str):
    """The sub-parser of the command group ``name`` (``daemon``, ``graph``, ``config``)."""
    return parser._subparsers._group_actions[0].choices[name]


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the final flush cannot fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def run_cli(argv: list[str]) -> int:
    """Run one command; every way out is an exit code, and a failure is one ``memesh:`` line."""
    from memesh.errors import MemeshError
    from memesh.logsetup import configure_stderr

    configure_stderr("warning")
    parser = build_parser()
    if len(argv) == 1 and argv[0] in GROUPS:  # a group without its command: say what it has
        group_parser(parser, argv[0]).print_help(sys.stderr)
        return 2
    try:
        parser.dispatch(argv=argv, output_file=sys.stdout)
        sys.stdout.flush()
    except SystemExit as exc:
        _flush_quietly()
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MemeshError as exc:
        _flush_quietly()
        print(f"memesh: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # the CLI's one boundary: a bug still ends in one line
        _flush_quietly()
        print(f"memesh: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
