"""Load: many official a2a-sdk clients at once, each sending many tasks with
returnImmediately, against a real daemon: every task is stored exactly once, no errors."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tests.a2a.sdk import client_for, http, send

CLIENTS = 50
PER_CLIENT = 100


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fifty_clients_times_a_hundred_send_message_store_every_task_exactly_once(hub):
    hub.window("alpha")
    url, token = hub.url("alpha"), hub.token

    async def one_client(number: int) -> list[tuple[str, str]]:
        async with http(token, timeout=120) as http_client:
            client = await client_for(url, token, http_client=http_client)
            sent = []
            for i in range(PER_CLIENT):
                text = f"client {number} task {i}"
                task = await send(client, text, immediately=True)
                sent.append((task.id, text))
            return sent

    async def everyone():
        return await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))

    results = asyncio.run(everyone())
    sent = [pair for batch in results for pair in batch]
    assert len(sent) == CLIENTS * PER_CLIENT
    assert len({task_id for task_id, _ in sent}) == len(sent)
    conn = sqlite3.connect(f"file:{hub.home.path / 'memesh.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, summary FROM a2a_tasks").fetchall()
    finally:
        conn.close()
    assert sorted(rows) == sorted(sent)
