"""The A2A tools of every window, the ``memesh://a2a/inbox`` resource, and what
``initialize`` says about them.

Each window is an agent (see :mod:`memesh.a2a.registry`); the tools act as that agent:

* ``a2a_agents``   who can be asked (online or not);
* ``a2a_inbox``    tasks waiting for this window's answer, oldest first, paged;
* ``a2a_reply``    answer one: completed (the answer), input-required (a question back),
  failed or rejected (the reason);
* ``a2a_send``     give another agent a task, optionally waiting for its answer;
* ``a2a_get_task`` one task with its conversation; ``a2a_cancel`` withdraw one;
* ``a2a_register`` take another name (and description) for this window's agent.

The tools need the hub (``services.a2a``), so they exist only in the daemon.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from memesh.a2a.hub import INBOX_URI, MAX_WAIT
from memesh.a2a.registry import AGENT_KEY
from memesh.errors import ValidationError
from memesh.mcp.tools import Tool, ToolContext

INSTRUCTIONS = (
    "This window is also an A2A agent of the memesh hub: other windows and outside agents can "
    "give it tasks. a2a_inbox lists the tasks waiting for an answer; answer each with a2a_reply. "
    "a2a_send gives another agent (see a2a_agents) a task and can wait for its answer."
)
CHANNEL_INSTRUCTIONS = (
    "Tasks from other agents arrive as <channel source=\"memesh\" task_id=\"…\" sender=\"…\" "
    "context_id=\"…\"> events: the body is the request, sender is the agent that asked, task_id "
    "names the task. Do the work, then answer with the a2a_reply tool (task_id, your answer as "
    "text, state completed; or state input-required to ask the sender a question)."
)
SESSION_KEY = "a2aSession"


def initialize_extras(hub: Any, result: dict) -> None:
    """Add what the A2A hub needs to a window's ``initialize`` result."""
    result["instructions"] = f"{result['instructions']}\n\n{INSTRUCTIONS}"
    if hub.channel:
        result["capabilities"]["experimental"] = {"claude/channel": {}}
        result["instructions"] += "\n\n" + CHANNEL_INSTRUCTIONS


def _agent(ctx: ToolContext) -> str:
    name = ctx.context.get(AGENT_KEY)
    if not isinstance(name, str) or not name:
        raise ValidationError("this window is not registered as an agent yet; call a2a_register first")
    return name


def read_inbox(services: Any, context: Mapping[str, Any]) -> str:
    agent = context.get(AGENT_KEY)
    page = services.a2a.inbox(agent) if isinstance(agent, str) and agent else {"agent": None, "tasks": [], "total": 0}
    return json.dumps(page, ensure_ascii=False, separators=(",", ":"))


def _obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_STR = {"type": "string"}
_ROW = _obj({"taskId": _STR, "contextId": _STR, "from": _STR, "to": _STR, "state": _STR, "text": _STR,
             "createdAt": {"type": "number"}, "updatedAt": {"type": "number"}}, ["taskId", "contextId", "from", "state", "text"])
_AGENT = _obj({"name": _STR, "project": _STR, "description": _STR, "online": {"type": "boolean"},
               "sessions": {"type": "integer"}, "createdAt": {"type": "number"}, "lastSeen": {"type": "number"}},
              ["name", "description", "online"])
TASK_OUT = _obj({
    "taskId": _STR, "contextId": _STR, "from": {**_STR, "description": "The agent that sent it"},
    "to": {**_STR, "description": "The agent it was sent to"},
    "state": {**_STR, "description": "submitted, working, input-required, completed, failed, canceled, rejected"},
    "text": {**_STR, "description": "The request"}, "reply": {**_STR, "description": "The answer, question or reason"},
    "updated": _STR,
    "history": {"type": "array", "items": _obj({"role": _STR, "text": _STR}, ["role", "text"])},
}, ["taskId", "contextId", "from", "to", "state", "text", "reply"])
INBOX_OUT = _obj({"agent": {"type": ["string", "null"]}, "tasks": {"type": "array", "items": _ROW},
                  "total": {"type": "integer"}, "nextOffset": {"type": "integer"}}, ["agent", "tasks", "total"])
AGENTS_OUT = _obj({"you": {"type": ["string", "null"]}, "agents": {"type": "array", "items": _AGENT}}, ["you", "agents"])

_TASK_ID = {"type": "string", "minLength": 1, "maxLength": 200, "description": "The task's id (taskId)"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 100000}


def _agents(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    hub = ctx.services.a2a
    return {"you": ctx.context.get(AGENT_KEY), "agents": hub.agents(online_only=args.get("online_only", False))}


def _inbox(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.a2a.inbox(_agent(ctx), limit=args.get("limit", 20), offset=args.get("offset", 0))


def _reply(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.a2a.reply(args["task_id"], args["text"], args.get("state", "completed"), agent=_agent(ctx))


def _send(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.a2a.send(args["to"], args["text"], wait_seconds=args.get("wait_seconds", 0), sender=_agent(ctx),
                                 context_id=args.get("context_id", ""), task_id=args.get("task_id", ""))


def _get_task(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.a2a.get_task(args["task_id"])


def _cancel(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.a2a.cancel(args["task_id"])


def _register(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    sid = ctx.context.get(SESSION_KEY)
    if not isinstance(sid, str):
        raise ValidationError("this window has no session in the daemon; a2a_register works through the daemon only")
    return ctx.services.a2a.registry.register(sid, args["name"], args.get("description"))


TOOLS: tuple[Tool, ...] = (
    Tool(
        name="a2a_agents", title="List A2A agents",
        description="The agents you can give tasks to with a2a_send: every Claude Code window of this user "
                    "(named after its project) and whether it is online now. 'you' is this window's own name.",
        input_schema=_obj({"online_only": {"type": "boolean", "description": "Only agents with a window open now"}}, []),
        output_schema=AGENTS_OUT, handler=_agents, read_only=True, idempotent=True, requires=("a2a",),
    ),
    Tool(
        name="a2a_inbox", title="A2A inbox",
        description="Tasks other agents gave this window that wait for your answer, oldest first. Do each "
                    "one, then answer it with a2a_reply. Paged: pass nextOffset back as offset for more.",
        input_schema=_obj({
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Tasks per page (default 20)"},
            "offset": {"type": "integer", "minimum": 0, "description": "Skip this many (from nextOffset)"},
        }, []),
        output_schema=INBOX_OUT, handler=_inbox, read_only=True, idempotent=True, requires=("a2a",),
    ),
    Tool(
        name="a2a_reply", title="Answer an A2A task",
        description="Answer a task from your inbox. state 'completed' (default): text is the result the sender "
                    "gets. 'input-required': text is a question; the sender's answer comes back as the same "
                    "task. 'failed' or 'rejected': text says why.",
        input_schema=_obj({
            "task_id": _TASK_ID,
            "text": {**_TEXT, "description": "The answer, question or reason"},
            "state": {"type": "string", "enum": ["completed", "input-required", "failed", "rejected"],
                      "description": "How the task stands after this answer (default completed)"},
        }, ["task_id", "text"]),
        output_schema=TASK_OUT, handler=_reply, requires=("a2a",),
    ),
    Tool(
        name="a2a_send", title="Give another agent a task",
        description="Send a task to another agent (a2a_agents lists them). With wait_seconds, wait that long "
                    "for its answer: the task comes back completed with 'reply', or input-required with its "
                    "question (answer by sending again with the same task_id). Otherwise check later with "
                    "a2a_get_task. A task for an offline agent waits until its window returns.",
        input_schema=_obj({
            "to": {"type": "string", "minLength": 1, "maxLength": 64, "description": "The agent's name"},
            "text": {**_TEXT, "description": "What you want done, self-contained"},
            "wait_seconds": {"type": "number", "minimum": 0, "maximum": MAX_WAIT,
                             "description": "How long to wait for the answer (default 0: do not wait)"},
            "task_id": {"type": "string", "maxLength": 200,
                        "description": "Continue this task (answer the question of an input-required task)"},
            "context_id": {"type": "string", "maxLength": 200, "description": "Group the task with earlier ones"},
        }, ["to", "text"]),
        output_schema=TASK_OUT, handler=_send, requires=("a2a",),
    ),
    Tool(
        name="a2a_get_task", title="Get an A2A task",
        description="One task, sent or received, with its state, request, answer and conversation.",
        input_schema=_obj({"task_id": _TASK_ID}, ["task_id"]),
        output_schema=TASK_OUT, handler=_get_task, read_only=True, idempotent=True, requires=("a2a",),
    ),
    Tool(
        name="a2a_cancel", title="Cancel an A2A task",
        description="Withdraw a task that is not finished yet; it ends canceled.",
        input_schema=_obj({"task_id": _TASK_ID}, ["task_id"]),
        output_schema=TASK_OUT, handler=_cancel, destructive=True, idempotent=True, requires=("a2a",),
    ),
    Tool(
        name="a2a_register", title="Name this window's agent",
        description="Give this window's agent another name and description (by default it is named after "
                    "the project). Tasks sent to the new name reach this window.",
        input_schema=_obj({
            "name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "e.g. 'frontend-reviewer'"},
            "description": {"type": "string", "maxLength": 1000, "description": "What this window does, for others"},
        }, ["name"]),
        output_schema=_AGENT, handler=_register, idempotent=True, requires=("a2a",),
    ),
)
