"""``memesh hook prompt``: the Claude Code UserPromptSubmit hook that shows a window its
pending A2A tasks.

Claude Code runs the command on every prompt with a JSON object on stdin (``cwd``,
``prompt``, …) and adds what it prints to the model's context. The command finds the
agent of that directory (``MEMESH_AGENT_NAME`` if set, else the agent last seen in the
directory's project), reads its pending tasks straight from the storage (no daemon
call, no a2a-sdk import: it must be fast) and prints them; it prints nothing when there
is nothing. It always exits 0: exit 2 would erase the user's prompt.

Where it reads follows ``storage.url``: with SQLite, the database file opened read-only
(only :mod:`memesh.store.a2a` is imported); with PostgreSQL, one plain connection (a
short connect timeout) reading this home's hub rows (:func:`memesh.store.pg.a2a.hook_pending`).
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys

MAX_STDIN = 1024 * 1024
MAX_OUTPUT = 8000     # Claude Code cuts hook output over ~10,000 characters to a preview
MAX_TASKS = 10
TEXT_CHARS = 600


def render(agent: str, tasks: list[dict], total: int) -> str:
    """The context block for ``agent``'s pending tasks ('' when there are none)."""
    if not tasks:
        return ""
    lines = [f"memesh A2A: {total} task(s) from other agents wait for this window (agent {agent!r}). "
             f"Do them when it suits the user's request, and answer each with the a2a_reply tool:"]
    for task in tasks:
        text = " ".join(task["text"].split())
        if len(text) > TEXT_CHARS:
            text = text[:TEXT_CHARS] + " …"
        lines.append(f"- task_id {task['taskId']} from {task['from'] or 'unknown'}: {text}")
    if total > len(tasks):
        lines.append(f"(and {total - len(tasks)} more: see a2a_inbox)")
    out = "\n".join(lines)
    return out if len(out) <= MAX_OUTPUT else out[:MAX_OUTPUT - 20] + "\n(cut: see a2a_inbox)"


def _project(cwd: str) -> str | None:
    from memesh.store.project import project_for

    try:
        return project_for(cwd) if cwd.startswith("/") else ""
    except Exception:
        return None


def pending_for(db_path: str, cwd: str, asked: str | None) -> tuple[str, list[dict], int] | None:
    """The pending tasks in the SQLite file ``db_path``."""
    from memesh.a2a import names
    from memesh.store import a2a as sqlite_a2a

    if not os.path.exists(db_path):
        return None
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1.0)
    try:
        conn.execute("BEGIN")
        if asked:
            agent = names.clean(asked)
        else:
            project = _project(cwd)
            agent = None if project is None else sqlite_a2a.agent_for_project(conn, project)
            if agent is None:
                return None
        tasks, total = sqlite_a2a.pending(conn, agent, MAX_TASKS, 0)
        return agent, tasks, total
    finally:
        conn.close()


def pending_in_postgresql(settings, cwd: str, asked: str | None) -> tuple[str, list[dict], int] | None:
    """The pending tasks of this home's hub in the PostgreSQL database of ``storage.url``."""
    from memesh.a2a import names
    from memesh.store.pg.a2a import hook_pending
    from memesh.store.storage import hub_identity, read_password_file

    project = "" if asked else _project(cwd)
    if project is None:
        return None
    password_file = settings["storage.password_file"]
    return hook_pending(settings["storage.url"], hub=hub_identity(settings.home),
                        agent=names.clean(asked) if asked else None, project=project, limit=MAX_TASKS,
                        password=read_password_file(password_file) if password_file else None)


def main(stdin=None, stdout=None, environ=None) -> int:
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    environ = os.environ if environ is None else environ
    try:
        raw = stdin.read(MAX_STDIN)
        event = json.loads(raw) if raw.strip() else {}
        cwd = event.get("cwd") if isinstance(event, dict) and isinstance(event.get("cwd"), str) else os.getcwd()
        from memesh.config import load_settings

        settings = load_settings(environ)
        asked = environ.get("MEMESH_AGENT_NAME")
        home_db = str(settings.home / "memesh.db")
        if settings["storage.url"] == "sqlite:":   # the default: no URL parsing to import
            found = pending_for(home_db, cwd, asked)
        else:
            from memesh.store.url import parse_storage_url

            storage = parse_storage_url(settings["storage.url"])
            if storage.is_postgresql:
                found = pending_in_postgresql(settings, cwd, asked)
            else:
                found = pending_for(storage.path or home_db, cwd, asked)
        if found is not None:
            text = render(*found)
            if text:
                stdout.write(text + "\n")
    except Exception as exc:   # never block or break the user's prompt
        print(f"memesh hook prompt: {exc}", file=sys.stderr)
    return 0
