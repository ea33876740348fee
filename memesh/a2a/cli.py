"""``memesh a2a agents | send | tasks | token``: the A2A hub from a terminal.

A thin skin over the daemon's ``a2a`` object (``memesh.connect().a2a``); ``token`` only
reads (or creates) the token file and needs no daemon.
"""
from __future__ import annotations

import json

import argh

from memesh.config import load_settings


def _a2a():
    import memesh

    return memesh.connect(name="memesh-cli", kind="cli")


@argh.arg("--json", dest="as_json", help="print JSON")
@argh.arg("--online", help="only agents with a window open now")
def agents(*, online: bool = False, as_json: bool = False) -> None:
    """List the agents (Claude Code windows) tasks can be sent to."""
    with _a2a() as mesh:
        found = mesh.a2a.agents(online)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    if not found:
        print("no agents yet: every Claude Code window running memesh becomes one")
    for agent in found:
        print(f"{agent['name']:<24} {'online' if agent['online'] else 'offline':<8} {agent['description']}")


@argh.arg("to", help="the agent's name (see `memesh a2a agents`)")
@argh.arg("text", help="what you want it to do")
@argh.arg("--wait", type=float, help="seconds to wait for the answer (default 0: do not wait)")
@argh.arg("--json", dest="as_json", help="print the task as JSON")
def send(to: str, text: str, *, wait: float = 0.0, as_json: bool = False) -> None:
    """Give an agent a task; with --wait, print its answer when it comes in time."""
    with _a2a() as mesh:
        task = mesh.a2a.send(to, text, wait_seconds=wait, sender="cli")
    if as_json:
        print(json.dumps(task, indent=2))
        return
    print(f"task {task['taskId']} to {task['to']}: {task['state']}")
    if task["reply"]:
        print(task["reply"])


@argh.arg("--agent", help="only tasks sent to this agent")
@argh.arg("--state", help="only tasks in this state (submitted, working, input-required, completed, …)")
@argh.arg("--limit", type=int, help="how many, newest first (default 20)")
@argh.arg("--json", dest="as_json", help="print JSON")
def tasks(*, agent: str = "", state: str = "", limit: int = 20, as_json: bool = False) -> None:
    """List tasks, newest first."""
    with _a2a() as mesh:
        found = mesh.a2a.tasks(agent, state, limit)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    for row in found:
        text = row["text"].replace("\n", " ")
        print(f"{row['taskId']}  {row['state']:<14} {row['from'] or '-'} -> {row['to']}: {text[:60]}")


def token() -> None:
    """Print the bearer token outside agents send to the front door (creating it if needed)."""
    from memesh.a2a.token import ensure_token
    from memesh.paths import ensure_layout, paths_for

    settings = load_settings()
    ensure_layout(paths_for(settings.home))
    print(ensure_token(settings.home))


COMMANDS = [agents, send, tasks, token]
