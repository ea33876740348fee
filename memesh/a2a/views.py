"""Tasks as the plain data windows, the CLI and Python see (camelCase, short state names).

A view keeps what a reader acts on: ids, who sent it to whom, its state, the request's
text, the answer (the artifacts' text, else the status message's text) and, on request,
the conversation so far.
"""
from __future__ import annotations

from typing import Any

from a2a.types.a2a_pb2 import Message, Role, Task, TaskState

from memesh.a2a import states


def _text(parts) -> str:
    return "\n".join(p.text for p in parts if p.HasField("text"))


def _meta(task: Task, key: str) -> str:
    value = task.metadata[key] if key in task.metadata else ""
    return value if isinstance(value, str) else ""


def message_view(message: Message) -> dict[str, Any]:
    return {"role": "agent" if message.role == Role.ROLE_AGENT else "user", "text": _text(message.parts)}


def task_view(task: Task, history: bool = False) -> dict[str, Any]:
    request = next((m for m in reversed(task.history) if m.role == Role.ROLE_USER), None)
    answer = "\n".join(t for t in (_text(a.parts) for a in task.artifacts) if t)
    if not answer and task.status.HasField("message"):
        answer = _text(task.status.message.parts)
    view: dict[str, Any] = {
        "taskId": task.id,
        "contextId": task.context_id,
        "from": _meta(task, "from"),
        "to": _meta(task, "agent"),
        "state": states.short_name(TaskState.Name(task.status.state)),
        "text": _text(request.parts) if request is not None else "",
        "reply": answer,
        "updated": task.status.timestamp.ToJsonString() if task.status.HasField("timestamp") else "",
    }
    if history:
        view["history"] = [message_view(m) for m in task.history]
        if task.status.HasField("message"):
            view["history"].append(message_view(task.status.message))
    return view
