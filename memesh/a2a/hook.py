"""``memesh hook prompt``: the Claude Code UserPromptSubmit hook that shows a window its
pending A2A tasks.

Claude Code runs the command on every prompt with a JSON object on stdin (``cwd``,
``prompt``, …) and adds what it prints to the model's context. The command finds the
agent of that directory (``MEMESH_AGENT_NAME`` if set, else the agent last seen in the
directory's project), reads its pending tasks straight from memesh.db (read-only; no
daemon call, no a2a-sdk import: it must be fast) and prints them; it prints nothing when
there is nothing. It always exits 0: exit 2 would erase the user's prompt.
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


def pending_for(db_path: str, cwd: str, asked: str | None) -> tuple[str, list[dict], int] | None:
    from memesh.a2a import inbox, names
    from memesh.store.project import project_for

    if not os.path.exists(db_path):
        return None
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1.0)
    try:
        conn.execute("BEGIN")
        if asked:
            agent = names.clean(asked)
        else:
            try:
                project = project_for(cwd) if cwd.startswith("/") else ""
            except Exception:
                return None
            agent = inbox.agent_for_project(conn, project)
            if agent is None:
                return None
        tasks, total = inbox.pending(conn, agent, MAX_TASKS, 0)
        return agent, tasks, total
    finally:
        conn.close()


def main(stdin=None, stdout=None, environ=None) -> int:
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    environ = os.environ if environ is None else environ
    try:
        raw = stdin.read(MAX_STDIN)
        event = json.loads(raw) if raw.strip() else {}
        cwd = event.get("cwd") if isinstance(event, dict) and isinstance(event.get("cwd"), str) else os.getcwd()
        from memesh.config import default_home

        db_path = str(default_home(environ) / "memesh.db")
        found = pending_for(db_path, cwd, environ.get("MEMESH_AGENT_NAME"))
        if found is not None:
            text = render(*found)
            if text:
                stdout.write(text + "\n")
    except Exception as exc:   # never block or break the user's prompt
        print(f"memesh hook prompt: {exc}", file=sys.stderr)
    return 0
