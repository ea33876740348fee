"""An outside agent (the official a2a-sdk client, unmodified) works with a real window
(memesh over stdio through the proxy) through a real daemon's front door."""
from __future__ import annotations

import asyncio
import threading

from a2a.client import A2ACardResolver
from a2a.types.a2a_pb2 import CancelTaskRequest, GetTaskRequest, ListTasksRequest, TaskState
from a2a.utils.errors import TaskNotCancelableError

from tests.a2a.conftest import inbox, read_inbox_resource, structured
from tests.a2a.sdk import client_for, http, request, send
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


def test_streaming_shows_the_task_then_status_updates_then_the_artifact_then_the_terminal_state(hub):
    window = hub.window("alpha")
    thread = answer_when_it_arrives(window, "streamed answer")

    async def scenario():
        client = await client_for(hub.url("alpha"), hub.token, streaming=True)
        events = [event async for event in client.send_message(request("stream it"))]
        await client.close()
        return events

    events = asyncio.run(scenario())
    thread.join(WAIT)
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds[0] == "task" and events[0].task.status.state == TaskState.TASK_STATE_SUBMITTED
    assert "status_update" in kinds and "artifact_update" in kinds
    assert kinds.index("artifact_update") < len(kinds) - 1
    assert kinds[-1] == "status_update" and events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    artifact = next(e.artifact_update.artifact for e in events if e.HasField("artifact_update"))
    assert artifact.parts[0].text == "streamed answer"


def test_get_task_returns_the_task_and_history_length_zero_leaves_the_history_out(hub):
    window = hub.window("alpha")

    async def scenario():
        client = await client_for(hub.url("alpha"), hub.token)
        sent = await send(client, "keep this", immediately=True)
        full = await client.get_task(GetTaskRequest(id=sent.id))
        bare = await client.get_task(GetTaskRequest(id=sent.id, history_length=0))
        await client.close()
        return sent, full, bare

    sent, full, bare = asyncio.run(scenario())
    assert full.id == sent.id and full.context_id == sent.context_id
    assert [m.parts[0].text for m in full.history] == ["keep this"]
    assert len(bare.history) == 0
    assert inbox(window)["total"] == 1


def test_list_tasks_pages_newest_first_with_a_token_until_an_empty_token(hub):
    hub.window("alpha")

    async def scenario():
        client = await client_for(hub.url("alpha"), hub.token)
        sent = [(await send(client, f"task {i}", immediately=True)).id for i in range(5)]
        pages, token = [], ""
        while True:
            page = await client.list_tasks(ListTasksRequest(page_size=2, page_token=token))
            pages.append(page)
            token = page.next_page_token
            if not token:
                break
        await client.close()
        return sent, pages

    sent, pages = asyncio.run(scenario())
    assert [len(p.tasks) for p in pages] == [2, 2, 1]
    assert all(p.total_size == 5 for p in pages)
    assert [t.id for p in pages for t in p.tasks] == list(reversed(sent))


def test_cancel_task_cancels_a_waiting_task_and_a_second_cancel_is_refused(hub):
    window = hub.window("alpha")

    async def scenario():
        client = await client_for(hub.url("alpha"), hub.token)
        sent = await send(client, "never mind", immediately=True)
        canceled = await client.cancel_task(CancelTaskRequest(id=sent.id))
        try:
            await client.cancel_task(CancelTaskRequest(id=sent.id))
        except TaskNotCancelableError as exc:
            again = exc
        else:
            again = None
        await client.close()
        return canceled, again

    canceled, again = asyncio.run(scenario())
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    assert again is not None
    assert inbox(window)["total"] == 0


def test_multi_turn_the_window_asks_a_question_and_the_senders_answer_continues_the_same_task(hub):
    window = hub.window("alpha")

    async def scenario():
        client = await client_for(hub.url("alpha"), hub.token)
        asker = answer_when_it_arrives(window, "which branch?", state="input-required")
        first = await send(client, "deploy it")
        asker.join(WAIT)
        closer = answer_when_it_arrives(window, "deployed main")
        second = await send(client, "main", task_id=first.id, context_id=first.context_id)
        closer.join(WAIT)
        await client.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert first.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    assert first.status.message.parts[0].text == "which branch?"
    assert second.id == first.id
    assert second.status.state == TaskState.TASK_STATE_COMPLETED
    assert [p.text for a in second.artifacts for p in a.parts] == ["deployed main"]
    texts = [m.parts[0].text for m in second.history]
    assert texts[0] == "deploy it" and "which branch?" in texts and "main" in texts
