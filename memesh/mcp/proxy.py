"""StdioProxyClient: a window's ``memesh`` process, relaying stdio to its session in the daemon.

Threads: a *reader* takes stdin lines from the first instant (nothing Claude Code sends
during start-up is lost: until the session is open they wait in a queue) and, once it
is, submits each line itself; answers that are ready at once (ping, tools/list, …) come
back with the submit call. A *poller* long-polls everything else (tool results,
notifications). Both write numbered batches in the session's order. The main thread
connects, then waits for stdin to end. Stdout carries JSON-RPC only; diagnostics go to
stderr.

The proxy peeks at each line (method and id) only to keep its promises:

* every request is remembered until its response passes through, so when the daemon
  goes away (crash, restart, upgrade) the proxy reconnects — running the election and
  starting a daemon if none comes back — opens a new session, replays the client's
  ``initialize``/``notifications/initialized`` (and state such as ``logging/setLevel``
  and resource subscriptions), swallowing the replayed responses, then resends held
  requests. A request the old daemon may have executed is resent only if it is
  read-only; otherwise it is answered with an error saying the outcome is unknown;
* if no daemon can be reached in time, every waiting request gets an error reply and
  the proxy keeps trying: it never goes silent.

The same loop serves standalone mode over an in-process session (``LocalChannel``).
"""
from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from typing import BinaryIO

from memesh.daemon.channel import ChannelBroken
from memesh import lazylog
from memesh.errors import DaemonDraining, MemeshError, NotFound
from memesh.mcp import jsonrpc

log = lazylog.get(__name__)  # the proxy's start-up path: see memesh.lazylog

MAX_LINE = jsonrpc.MAX_LINE_BYTES  # a longer stdin line is answered with an error and dropped
POLL_TIMEOUT = 1.0  # seconds per long-poll; also the proxy's effective heartbeat
HEARTBEAT = 2.0  # seconds promised to the daemon (it drops us after 3 missed)
RECONNECT_BUDGET = 30.0  # seconds of reconnect attempts before waiting requests are answered with errors
EOF_GRACE = 1.0  # seconds to let in-flight answers out after stdin closes (exit stays < 2 s)
ORDER_WAIT = 1.0  # seconds a batch of output waits for an earlier one held by the other thread

OUTCOME_UNKNOWN = -31001  # application range: outside JSON-RPC's reserved -32768…-32000
UNAVAILABLE = -31002

READ_ONLY_METHODS = frozenset({
    "initialize", "ping", "server/discover", "tools/list", "resources/list", "resources/read",
    "resources/templates/list", "prompts/list", "prompts/get", "completion/complete",
    "logging/setLevel", "resources/subscribe", "resources/unsubscribe",
})
REPLAYED_METHODS = ("logging/setLevel", "resources/subscribe", "resources/unsubscribe")
EOF = object()
OVERSIZE = object()


def id_key(value) -> str:
    return json.dumps(value, sort_keys=True)


def peek(line: bytes | str) -> dict | None:
    """The parsed message if it is a JSON object, else None (the session answers garbage)."""
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return msg if isinstance(msg, dict) else None


class StdinReader(threading.Thread):
    """Reads stdin lines from the first instant; oversize lines become OVERSIZE, the end EOF.

    Until a handler is attached, items wait in ``lines`` (nothing sent during start-up is
    lost). :meth:`attach` hands the queued items to the handler, in order, and from then
    on this thread calls the handler itself: one thread hop less per request.
    """

    def __init__(self, stream: BinaryIO, limit: int = MAX_LINE):
        super().__init__(name="stdin", daemon=True)
        self.stream = stream
        self.limit = limit
        self.lines: queue.Queue = queue.Queue()
        self._handler = None
        self._order = threading.Lock()  # held while items are handed over: keeps them in order

    def attach(self, handler) -> None:
        with self._order:
            self._handler = handler
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                item = self.lines.get_nowait()
            except queue.Empty:
                return
            self._handler(item)

    def _emit(self, item) -> None:
        with self._order:
            if self._handler is None:
                self.lines.put(item)
                return
            self._drain()
            self._handler(item)

    def run(self) -> None:
        try:
            while True:
                line = self.stream.readline(self.limit + 1)
                if not line:
                    break
                if len(line) > self.limit:
                    while not line.endswith(b"\n"):
                        line = self.stream.readline(1 << 20)
                        if not line:
                            break
                    self._emit(OVERSIZE)
                    continue
                if line.strip():
                    self._emit(line)
        except (OSError, ValueError):
            pass
        self._emit(EOF)


class Pending:
    __slots__ = ("line", "method", "read_only", "gen", "resent")

    def __init__(self, line: bytes, method: str, read_only: bool):
        self.line = line
        self.method = method
        self.read_only = read_only
        self.gen = -1  # generation of the session it was submitted to (-1: not yet)
        self.resent = False  # sent again after a reconnect: a second answer may follow


class LocalChannel:
    """The channel interface over an in-process session host (standalone mode)."""

    def __init__(self, host):
        self._host = host
        self.closed = False

    def call(self, ident: str, method: str, args: tuple = (), kwargs: dict | None = None, timeout: float | None = None):
        if ident == "mcp":
            return getattr(self._host, method)(*args, **(kwargs or {}))
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._host.shutdown()


class Proxy:
    def __init__(self, reader: StdinReader, stdout: BinaryIO, connect, context: dict):
        """``connect()`` returns ``(submit_channel, poll_channel, session_id, info)``."""
        self.reader = reader
        self.stdout = stdout
        self._connect = connect
        self.context = context
        self._out_lock = threading.Lock()
        self._state = threading.Condition()
        self.pending: dict[str, Pending] = {}
        self.swallow: set[str] = set()
        self.resent: set[str] = set()  # ids answered once after a resend; a late second answer is dropped
        self.init_line: bytes | None = None
        self.initialized_line: bytes | None = None
        self.state_lines: list[bytes] = []
        self.read_only_tools: frozenset[str] = frozenset()
        self.gen = 0
        self.submit_ch = self.poll_ch = None
        self.sid = ""
        self.closing = False
        self._reconnecting = False
        self._eof = threading.Event()
        self._order = threading.Condition()  # session output is written in batch order
        self._batch_gen = 0
        self._next_batch = 1

    # -- output ------------------------------------------------------------------------
    def write(self, line: str) -> None:
        data = line.encode("utf-8") + b"\n"
        with self._out_lock:
            try:
                self.stdout.write(data)
                self.stdout.flush()
            except (OSError, ValueError):
                pass  # the client is gone; stdin EOF follows

    def deliver(self, line: str) -> None:
        msg = peek(line)
        if msg is not None and "method" not in msg and "id" in msg:
            key = id_key(msg["id"])
            with self._state:
                if key in self.swallow:
                    self.swallow.discard(key)
                    return
                entry = self.pending.pop(key, None)
                if entry is None and key in self.resent:
                    # The second answer to a read-only request that was resent after a
                    # reconnect while the old daemon's answer was still on its way.
                    self.resent.discard(key)
                    return
                if entry is not None and entry.resent:
                    self.resent.add(key)
                self._state.notify_all()
        self.write(line)

    def deliver_batch(self, gen: int, batch) -> None:
        """Write a numbered batch of the session's output, in the session's order.

        The submitting thread (answers ready at once) and the poller (everything else)
        both take batches; a batch waits (bounded) for the ones numbered before it. A
        batch of an older session is written as it comes: that session is gone.
        """
        seq, lines = batch
        if not lines:
            return
        with self._order:
            if gen > self._batch_gen:
                self._batch_gen, self._next_batch = gen, 1
            if gen == self._batch_gen:
                deadline = time.monotonic() + ORDER_WAIT
                while seq > self._next_batch and self.gen == gen and not self.closing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        log.warning("batch %d of the session output never came; writing %d anyway", self._next_batch, seq)
                        break
                    self._order.wait(left)
            for line in lines:
                self.deliver(line)
            if gen == self._batch_gen and seq >= self._next_batch:
                self._next_batch = seq + 1
                self._order.notify_all()

    def answer(self, key: str, code: int, message: str) -> None:
        with self._state:
            entry = self.pending.pop(key, None)
            self._state.notify_all()
        if entry is not None:
            self.write(jsonrpc.dumps(jsonrpc.error(json.loads(key), code, message)))

    # -- connection --------------------------------------------------------------------
    def connect(self) -> None:
        submit_ch, poll_ch, sid, info = self._connect()
        with self._state:
            self.submit_ch, self.poll_ch, self.sid = submit_ch, poll_ch, sid
            self.read_only_tools = frozenset(info.get("readOnlyTools") or ())
            self.gen += 1
            self._state.notify_all()

    def current(self):
        with self._state:
            return self.submit_ch, self.poll_ch, self.sid, self.gen

    def reconnect(self, failed_gen: int) -> None:
        """Replace a lost session. Single-flight: whoever notices first reconnects and
        restores the session; everyone else waits for it, then retries on the new one."""
        with self._state:
            if failed_gen != self.gen or self.closing:
                return
            if self._reconnecting:
                while self._reconnecting and not self.closing:
                    self._state.wait(0.5)
                return
            self._reconnecting = True
            old = (self.submit_ch, self.poll_ch)
            self.submit_ch = self.poll_ch = None
        try:
            for channel in old:
                if channel is not None:
                    channel.close()
            started = time.monotonic()
            attempt = 0
            while not self.closing:
                try:
                    self.connect()
                    if self._restore():
                        break
                except (MemeshError, OSError, EOFError) as exc:
                    log.warning("daemon unavailable (%s); retrying", exc)
                if time.monotonic() - started > RECONNECT_BUDGET:
                    self.fail_waiting("the memesh daemon is unavailable; retry in a moment")
                    started = time.monotonic()
                from memesh.backoff import next_delay

                time.sleep(next_delay(attempt))
                attempt += 1
        finally:
            with self._state:
                self._reconnecting = False
                self._state.notify_all()
        self.settle()

    def _restore(self) -> bool:
        """Replay initialize/initialized and session state on the new session (answers swallowed)."""
        with self._state:
            submit_ch, sid = self.submit_ch, self.sid
            lines = [line for line in (self.init_line, self.initialized_line, *self.state_lines) if line is not None]
            for line in lines:
                msg = peek(line)
                if msg is not None and "id" in msg and msg.get("method") is not None:
                    self.swallow.add(id_key(msg["id"]))
        with self._state:
            gen = self.gen
        try:
            for line in lines:
                batch = submit_ch.call("mcp", "submit", (sid, line.decode("utf-8", "replace")), timeout=30.0)
                self.deliver_batch(gen, batch)
        except (MemeshError, OSError, EOFError) as exc:
            log.warning("could not restore the session on the new daemon (%s); retrying", exc)
            with self._state:
                channels = (self.submit_ch, self.poll_ch)
                self.submit_ch = self.poll_ch = None
            for channel in channels:
                if channel is not None:
                    channel.close()
            return False
        return True

    def settle(self) -> None:
        """Requests a lost session may have run: resend the read-only ones, answer the rest.

        Entries still being submitted by their own thread (gen -1) are that thread's
        business; entries being resent are claimed (gen -2) so no one sends them twice.
        """
        with self._state:
            gen = self.gen
            resend, unknown = [], []
            for key, entry in self.pending.items():
                if 0 <= entry.gen < gen:
                    if entry.read_only:
                        entry.gen = -2
                        entry.resent = True
                        resend.append(entry)
                    else:
                        unknown.append(key)
        for key in unknown:
            log.warning("request %s was in flight when the daemon went away; its outcome is unknown", key)
            self.answer(key, OUTCOME_UNKNOWN, "the memesh daemon restarted before answering; this request may or may not have taken effect — check before repeating it")
        for entry in resend:
            self._submit(entry.line, entry)

    def fail_waiting(self, reason: str) -> None:
        with self._state:
            keys = list(self.pending)
        for key in keys:
            self.answer(key, UNAVAILABLE, reason)

    # -- input -------------------------------------------------------------------------
    def _is_read_only(self, msg: dict) -> bool:
        method = msg.get("method")
        if method in READ_ONLY_METHODS:
            return True
        if method == "tools/call":
            params = msg.get("params")
            return isinstance(params, dict) and params.get("name") in self.read_only_tools
        return False

    def handle(self, line: bytes) -> None:
        msg = peek(line)
        entry = None
        if msg is not None:
            method = msg.get("method")
            if isinstance(method, str) and "id" in msg:
                entry = Pending(line, method, self._is_read_only(msg))
                with self._state:
                    self.pending[id_key(msg["id"])] = entry
                if method == "initialize":
                    self.init_line = line
                elif method in REPLAYED_METHODS:
                    self.state_lines.append(line)
            elif method == "notifications/initialized":
                self.initialized_line = line
            elif method == "notifications/cancelled":
                params = msg.get("params")
                if isinstance(params, dict) and "requestId" in params:
                    with self._state:
                        self.pending.pop(id_key(params["requestId"]), None)
                        self._state.notify_all()
        self._submit(line, entry)

    def _submit(self, line: bytes, entry: Pending | None) -> None:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        while not self.closing:
            submit_ch, _, sid, gen = self.current()
            if submit_ch is None:
                self.reconnect(gen)
                continue
            try:
                batch = submit_ch.call("mcp", "submit", (sid, text), timeout=30.0)
            except (DaemonDraining, NotFound):
                self.reconnect(gen)  # not taken: resend to the next daemon
                continue
            except ChannelBroken as exc:
                log.info("submit failed (sent=%s): %s", exc.sent, exc)
                if entry is not None and exc.sent:
                    entry.gen = gen  # maybe taken: settle() resends it only if read-only
                    self.reconnect(gen)
                    self.settle()  # in case another thread had already reconnected
                    return
                self.reconnect(gen)
                continue
            if entry is not None:
                entry.gen = gen
            self.deliver_batch(gen, batch)
            return

    # -- threads -----------------------------------------------------------------------
    def poll_loop(self) -> None:
        while not self.closing:
            _, poll_ch, sid, gen = self.current()
            if poll_ch is None:
                self.reconnect(gen)
                continue
            try:
                batch = poll_ch.call("mcp", "poll", (sid, POLL_TIMEOUT), timeout=POLL_TIMEOUT + 10.0)
            except Exception as exc:
                if self.closing:
                    return
                log.info("lost the session (%r); reconnecting", exc)
                self.reconnect(gen)
                continue
            self.deliver_batch(gen, batch)

    def _on_item(self, item) -> None:
        if item is EOF:
            self._eof.set()
        elif item is OVERSIZE:
            self.write(jsonrpc.dumps(jsonrpc.oversize_reply()))
        else:
            self.handle(item)

    def run(self) -> int:
        poller = threading.Thread(target=self.poll_loop, name="poll", daemon=True)
        poller.start()
        self.reader.attach(self._on_item)
        self._eof.wait()
        return self.finish()

    def finish(self) -> int:
        deadline = time.monotonic() + EOF_GRACE
        with self._state:
            while self.pending and time.monotonic() < deadline:
                self._state.wait(max(0.0, deadline - time.monotonic()))
            self.closing = True
        submit_ch, poll_ch, _, _ = self.current()
        if submit_ch is not None:
            try:
                submit_ch.call("control", "bye", timeout=0.5)
            except Exception:
                pass
        for channel in (submit_ch, poll_ch):
            if channel is not None:
                channel.close()
        return 0


def daemon_connector(settings, context: dict):
    """``connect()`` for a Proxy: two channels to the daemon (started if needed) and a session."""
    from memesh import identity
    from memesh.daemon.spawn import connect_compatible, ensure_daemon
    from memesh.paths import paths_for

    paths = paths_for(settings.home)
    session = os.urandom(16).hex()
    info = {**identity.identity(build=False), "session": session, "name": "mcp-proxy", "kind": "proxy",
            "pid": os.getpid(), "cwd": context.get("cwd", ""), "heartbeat": HEARTBEAT}

    def connect():
        submit_ch, hello = connect_compatible(settings, paths, info, name="mcp-proxy")
        try:
            poll_ch, second = ensure_daemon(settings, paths, info, start=False, name="mcp-proxy")
        except BaseException:
            submit_ch.close()
            raise
        if second.get("instanceId") != hello.get("instanceId"):  # replaced in between: try again
            submit_ch.close()
            poll_ch.close()
            raise DaemonDraining("the daemon was replaced while connecting")
        try:
            opened = submit_ch.call("mcp", "open", (context,), timeout=10.0)
        except BaseException:
            submit_ch.close()
            poll_ch.close()
            raise
        return submit_ch, poll_ch, opened["sid"], opened

    return connect


def local_connector(settings, context: dict):
    """``connect()`` for standalone mode: an in-process session on the same database."""

    def connect():
        from memesh.daemon.clients import ClientRegistry
        from memesh.daemon.mcp_host import McpHost
        from memesh.daemon.services import open_local_services
        from memesh.daemon.shutdown import ShutdownCoordinator

        services = open_local_services(settings)
        host = McpHost(services, ShutdownCoordinator(0), ClientRegistry())
        channel = LocalChannel(host)
        opened = host.open(context)
        return channel, channel, opened["sid"], opened

    return connect


def serve(settings, reader: StdinReader, stdout: BinaryIO | None = None, *, standalone: bool = False) -> int:
    """Serve one window: through the daemon, or standalone when asked, disabled or unusable."""
    stdout = stdout or sys.stdout.buffer
    context = {"cwd": os.getcwd(), "pid": os.getpid()}
    if settings.daemon_enabled and not standalone:
        proxy = Proxy(reader, stdout, daemon_connector(settings, context), context)
        try:
            proxy.connect()
            return proxy.run()
        except (MemeshError, OSError) as exc:
            print(f"memesh: the shared daemon is unavailable ({exc}); serving this window standalone", file=sys.stderr)
    proxy = Proxy(reader, stdout, local_connector(settings, context), context)
    proxy.connect()
    return proxy.run()
