"""The A2A hub with real processes: what an outside agent and a window pay.

Prints:

1. daemon spawn -> ready with the A2A front door enabled (it starts after ready);
2. daemon idle RSS with the front door up (and after the load below);
3. ``SendMessage`` with ``returnImmediately`` from the official a2a-sdk client, p50/p99;
4. round trip outside agent -> window -> reply -> result, without think time: a blocking
   ``SendMessage`` whose task a real window (``memesh`` over stdio through the proxy)
   answers with ``a2a_reply`` as soon as the channel event arrives, p50/p99.

Every process is stopped by verified pid (daemons) or process group (the window) before
the script exits. Run: ``python bench/bench_a2a.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_daemon import Home, percentile, rss_mb, spawn_ready  # noqa: E402

TARGETS = {"spawn": "<= 250 ms", "send": "p50 <= 5 ms", "round": "p50 <= 20 ms", "rss": "<= 60 MB"}


def a2a_home() -> Home:
    home = Home()
    home.env.update({"MEMESH_A2A_PORT": "0", "MEMESH_A2A_CHANNEL": "1", "PYTHONPATH": str(REPO)})
    from memesh.config import load_settings

    home.settings = load_settings(home.env)
    return home


def wait_port(home: Home, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            record = json.loads(home.paths.record.read_text())
            if record.get("a2aPort"):
                return record["a2aPort"]
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    raise SystemExit("the front door did not publish its port")


class Window:
    """A real window that answers every task the moment its channel event arrives."""

    def __init__(self, home: Home, project: str, answer: bool = True) -> None:
        self.answer = answer
        directory = home.path / project
        (directory / ".git").mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "memesh"], cwd=directory, env=home.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._send({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            raise SystemExit("the window did not initialize")

    def _send(self, message: dict) -> None:
        with self._lock:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()

    def _read(self) -> None:
        for line in self.proc.stdout:
            message = json.loads(line)
            if message.get("id") == "init":
                self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
                self.ready.set()
            elif message.get("method") == "notifications/claude/channel" and self.answer:
                task_id = message["params"]["meta"]["task_id"]
                self._send({"jsonrpc": "2.0", "id": uuid.uuid4().hex, "method": "tools/call",
                            "params": {"name": "a2a_reply", "arguments": {"task_id": task_id, "text": "done"}}})

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


async def measure(url: str, idle_url: str, token: str, sends: int, rounds: int) -> tuple[list[float], list[float]]:
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageConfiguration, SendMessageRequest, TaskState

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http, streaming=False))
        idle = await create_client(idle_url, client_config=ClientConfig(httpx_client=http, streaming=False))

        async def one(immediately: bool) -> float:
            request = SendMessageRequest(
                message=Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text="bench")]),
                configuration=SendMessageConfiguration(return_immediately=immediately))
            started = time.perf_counter()
            # returnImmediately goes to a window that never answers: nothing else runs meanwhile
            async for event in (idle if immediately else client).send_message(request):
                if not immediately:
                    assert event.task.status.state == TaskState.TASK_STATE_COMPLETED, event
                break
            return time.perf_counter() - started

        for _ in range(20):
            await one(False)   # warm-up
        send = [await one(True) for _ in range(sends)]
        round_trip = [await one(False) for _ in range(rounds)]
        await client.close()
    return send, round_trip


async def load(url: str, token: str, clients: int, each: int) -> float:
    """``clients`` concurrent SDK clients x ``each`` SendMessage(returnImmediately); returns seconds."""
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageConfiguration, SendMessageRequest

    async def one() -> None:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=300) as http:
            client = await create_client(url, client_config=ClientConfig(httpx_client=http, streaming=False))
            for _ in range(each):
                request = SendMessageRequest(
                    message=Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text="load")]),
                    configuration=SendMessageConfiguration(return_immediately=True))
                async for _event in client.send_message(request):
                    break
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    return time.perf_counter() - started


def ms(samples: list[float], p: float) -> str:
    return f"{percentile(samples, p) * 1000:6.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the script)")
    parser.add_argument("--load", action="store_true", help="also 50 clients x 100 SendMessage, then RSS")
    args = parser.parse_args()
    spawn_runs, sends, rounds = (3, 100, 50) if args.quick else (9, 1000, 300)
    print(f"memesh A2A benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

    spawn = []
    for _ in range(spawn_runs):
        home = a2a_home()
        try:
            spawn.append(spawn_ready(home))
            wait_port(home)
        finally:
            home.remove()
    print(f"daemon spawn -> ready (A2A on)   median {statistics.median(spawn) * 1000:6.1f} ms (min {min(spawn) * 1000:.1f}, "
          f"max {max(spawn) * 1000:.1f}; {spawn_runs} runs)   target {TARGETS['spawn']}")

    home = a2a_home()
    window = None
    try:
        spawn_ready(home)
        port = wait_port(home)
        pid = home.daemon_pid()
        time.sleep(1.0)
        idle = rss_mb(pid)
        token = (home.path / "a2a.token").read_text().strip()
        window = Window(home, "bench-window")
        quiet = Window(home, "bench-quiet", answer=False)
        time.sleep(0.5)
        base = f"http://127.0.0.1:{port}/agents/"
        send, round_trip = asyncio.run(measure(base + "bench-window/", base + "bench-quiet/", token, sends, rounds))
        if args.load:
            seconds = asyncio.run(load(base + "bench-quiet/", token, 50, 100))
            print(f"load 50 clients x 100 SendMessage  {5000 / seconds:6.0f} tasks/s ({seconds:.1f} s); daemon RSS "
                  f"{rss_mb(pid):.1f} MB with 5000 tasks waiting")
        quiet.kill()
        print(f"SendMessage (returnImmediately)  p50 {ms(send, 50)}   p99 {ms(send, 99)}   ({sends} calls)   target {TARGETS['send']}")
        print(f"round trip agent->window->reply  p50 {ms(round_trip, 50)}   p99 {ms(round_trip, 99)}   ({rounds} calls)   "
              f"target {TARGETS['round']}")
        window.kill()
        window = None
        time.sleep(1.0)
        after = rss_mb(pid)
        threads = psutil.Process(pid).num_threads()
        tasks = sends + rounds + 20 + (5000 if args.load else 0)
        print(f"daemon idle RSS, front door up   {idle:6.1f} MB fresh, {after:.1f} MB after {tasks} tasks "
              f"({threads} threads)   target {TARGETS['rss']}")
    finally:
        if window is not None:
            window.kill()
        home.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
