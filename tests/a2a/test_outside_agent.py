"""An outside agent (the official a2a-sdk client, unmodified) works with a real window
(memesh over stdio through the proxy) through a real daemon's front door."""
from __future__ import annotations

import asyncio
import threading

from a2a.client import A2ACardResolver
from a2a.types.a2a_pb2 import TaskState

from tests.a2a.conftest import inbox, read_inbox_resource, structured
from tests.a2a.sdk import client_for, http, send
from tests.support import wait_until

WAIT = 15.0


def answer_when_it_arrives(window, text: str, state: str = "completed") -> threading.Thread:
    """The window's side, in a thread: wait for a task in the inbox, then a2a_reply."""
    def work() -> None:
        page = wait_until(lambda: (p := inbox(window)) and p["tasks"] and p, WAIT, "a task in the window's inbox")
        structured(window.call("a2a_reply", {"task_id": page["tasks"][0]["taskId"], "text": text, "state": state}))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_window_agent_card_resolves_with_the_sdk_client_and_names_the_agents_own_url(hub):
    window = hub.window("alpha")
    assert hub.agent_of(window) == "alpha"

    async def scenario():
        async with http(None) as http_client:   # cards need no token
            return await A2ACardResolver(http_client, hub.url("alpha")).get_agent_card()

    card = asyncio.run(scenario())
    assert card.name == "alpha"
    assert card.supported_interfaces[0].url == hub.url("alpha")
    assert card.supported_interfaces[0].protocol_binding == "JSONRPC"


def test_blocking_send_message_reaches_the_window_which_sees_it_and_its_reply_comes_back_as_an_artifact(hub):
    window = hub.window("alpha")
    thread = answer_when_it_arrives(window, "the answer is 42")

    async def scenario():
        client = await client_for(hub.url("alpha"), hub.token)
        task = await send(client, "what is the answer?")
        await client.close()
        return task

    task = asyncio.run(scenario())
    thread.join(WAIT)
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [p.text for a in task.artifacts for p in a.parts] == ["the answer is 42"]
    assert task.history[0].parts[0].text == "what is the answer?"
    updates = window.notifications("notifications/resources/updated")
    assert any(n["params"]["uri"] == "memesh://a2a/inbox" for n in updates)


def test_the_inbox_resource_lists_a_task_that_arrived_and_forgets_it_once_answered(hub):
    window = hub.window("alpha")

    async def scenario():
        client = await client_for(hub.url("alpha"), hub.token)
        task = await send(client, "please review", immediately=True)
        await client.close()
        return task

    task = asyncio.run(scenario())
    assert task.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
    window.wait_notification("notifications/resources/updated")
    document = read_inbox_resource(window)
    assert [t["taskId"] for t in document["tasks"]] == [task.id]
    assert document["tasks"][0]["text"] == "please review"
    structured(window.call("a2a_reply", {"task_id": task.id, "text": "done"}))
    assert read_inbox_resource(window)["tasks"] == []
