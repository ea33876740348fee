"""The front door's guard against a real daemon: token, Host, Origin, body limit, loopback only."""
from __future__ import annotations

import os
import socket
import stat

import httpx
import psutil

from tests.support import wait_until

LIST = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}
VERSION = {"A2A-Version": "1.0"}


def post(hub, body=None, headers=None, content=None, token=True):
    h = dict(VERSION)
    if token:
        h["Authorization"] = f"Bearer {hub.token}"
    h.update(headers or {})
    return httpx.post(hub.url(), json=body if content is None else None, content=content, headers=h, timeout=30)


def test_without_the_token_everything_but_agent_cards_is_refused_with_401(hub):
    hub.window("alpha")
    assert post(hub, LIST, token=False).status_code == 401
    assert post(hub, LIST, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert post(hub, LIST).status_code == 200
    assert httpx.get(hub.url() + ".well-known/agent-card.json").status_code == 200
    assert httpx.get(hub.url("alpha") + ".well-known/agent-card.json").status_code == 200


def test_the_token_file_is_private_and_stays_the_same_across_a_restart(hub):
    hub.window("alpha")
    path = hub.home.path / "a2a.token"
    before = hub.token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    old_pid = hub.record()["pid"]
    assert hub.home.cli("daemon", "restart").returncode == 0
    wait_until(lambda: (r := hub.home.record()) and r["pid"] != old_pid and r.get("a2aPort"), 20, "the new daemon's front door")
    assert hub.token == before
    assert post(hub, LIST).status_code == 200
    assert hub.home.cli("a2a", "token").stdout.strip() == before


def test_a_foreign_host_header_is_refused_as_dns_rebinding(hub):
    hub.window("alpha")
    response = post(hub, LIST, headers={"Host": f"attacker.example:{hub.port}"})
    assert response.status_code == 421
    assert post(hub, LIST, headers={"Host": f"127.0.0.1:{hub.port + 1}"}).status_code == 421
    assert post(hub, LIST, headers={"Host": f"localhost:{hub.port}"}).status_code == 200


def test_a_request_from_a_web_page_with_an_origin_header_is_refused(hub):
    hub.window("alpha")
    assert post(hub, LIST, headers={"Origin": "http://evil.example"}).status_code == 403
    assert httpx.get(hub.url() + ".well-known/agent-card.json", headers={"Origin": "http://evil.example"}).status_code == 403


def test_a_body_over_ten_mib_gets_413_and_the_next_request_is_served(hub):
    hub.window("alpha")
    big = b'{"jsonrpc":"2.0","id":1,"method":"ListTasks","params":{"x":"' + b"a" * (10 * 1024 * 1024) + b'"}}'
    assert post(hub, content=big, headers={"Content-Type": "application/json"}).status_code == 413

    def chunks():
        for _ in range(11):
            yield b"a" * (1024 * 1024)

    chunked = httpx.post(hub.url(), content=chunks(), headers={**VERSION, "Authorization": f"Bearer {hub.token}"}, timeout=30)
    assert chunked.status_code == 413
    assert post(hub, LIST).status_code == 200


def test_the_listening_socket_is_bound_to_127_0_0_1_only(hub):
    hub.window("alpha")
    port, pid = hub.port, hub.record()["pid"]
    listening = [c for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert [(c.laddr.ip, c.laddr.port) for c in listening] == [("127.0.0.1", port)]
    addresses = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET}
    for address in addresses - {"127.0.0.1"}:
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((address, port)) != 0, address
