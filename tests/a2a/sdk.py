"""The official a2a-sdk client, unmodified, as an outside agent uses it (async helpers)."""
from __future__ import annotations

import uuid

import httpx
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageConfiguration, SendMessageRequest


def http(token: str | None, timeout: float = 30.0) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(headers=headers, timeout=timeout)


async def client_for(url: str, token: str, streaming: bool = False, http_client: httpx.AsyncClient | None = None):
    config = ClientConfig(httpx_client=http_client or http(token), streaming=streaming)
    return await create_client(url, client_config=config)


def request(text: str, *, task_id: str = "", context_id: str = "", immediately: bool = False) -> SendMessageRequest:
    message = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)],
                      task_id=task_id, context_id=context_id)
    return SendMessageRequest(message=message, configuration=SendMessageConfiguration(return_immediately=immediately))


async def send(client, text: str, **kwargs):
    """Non-streaming SendMessage: the one Task (or Message) the server answered with."""
    async for event in client.send_message(request(text, **kwargs)):
        return event.task if event.HasField("task") else event.message
    raise AssertionError("send_message yielded nothing")
