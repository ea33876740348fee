"""StdioProxyClient: a window's ``memesh`` process, relaying stdio to its session in the daemon.

Threads, each with one job:

* *stdin* (:class:`~memesh.mcp.stdin.StdinReader`) reads lines from the first instant and
  reads every line to its end, whatever the daemon is doing. It parses each line once
  (:func:`memesh.mcp.jsonrpc.parse_line`: bounded depth, strict UTF-8) and answers on the
  spot what cannot be sent on (bad JSON, bad UTF-8, too deep, too large for a daemon
  frame, an id already in flight); everything else goes, in order, to the submitter.
* *submit* sends lines to the session; answers ready at once (ping, tools/list, …) come
  back with the submit call. It connects first and reconnects when needed.
* *poll* long-polls everything else (tool results, notifications). Both write numbered
  batches in the session's order.
* the main thread waits for the end of stdin or SIGINT/SIGTERM, then says goodbye to the
  daemon and returns 0 — within 2 s in every state, since no other thread has to finish.

Stdout carries JSON-RPC only (written with ``os.write``, never through ``sys.stdout``);
diagnostics go to stderr. The promises the proxy keeps:

* one id, one answer: a request is remembered from the moment it is read until its one
  answer is written; whoever removes it from ``pending`` (the session's answer, or an
  error from the proxy) is the only one who writes an answer, and a request that is no
  longer pending is never sent (again);
* when the daemon goes away (crash, restart, upgrade) the proxy reconnects — running the
  election and starting a daemon if none comes back — opens a new session, replays the
  client's ``initialize``/``notifications/initialized`` (and ``logging/setLevel`` and
  resource subscriptions) under ids of its own whose answers it swallows, then resends
  held requests. A request the old daemon may have executed is resent only if it is
  read-only; otherwise it is answered with an error saying the outcome is unknown;
* if no daemon can be reached within ``proxy.reconnect_budget``, every waiting request is
  answered with an error (and never sent later) and the proxy keeps trying: it never
  goes silent.

The same loop serves standalone mode over an in-process session (``LocalChannel``), and
a window whose home is unusable over a host that answers every request with the reason.
"""
from __future__ import annotations

import json
import os
import queue
import select
import sys
import threading
import time

from memesh import lazylog
from memesh.daemon.channel import ChannelBroken
from memesh.errors import DaemonDraining, MemeshError, MessageTooLarge, NotFound
from memesh.mcp import jsonrpc
from memesh.mcp.stdin import EOF, OVERSIZE, StdinReader, split_lines  # noqa: F401  (re-exported)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the start-up path
if TYPE_CHECKING:
    from typing import Any, BinaryIO

log = lazylog.get(__name__)  # the proxy's start-up path: see memesh.lazylog

MAX_LINE = jsonrpc.MAX_LINE_BYTES  # a longer stdin line is answered with an error and dropped
POLL_TIMEOUT = 4.0  # seconds per long-poll (a poll in flight keeps the window alive in the daemon); under MAX_POLL
SUBMIT_TIMEOUT = 30.0  # seconds a submit may take: it only queues the line in the session
RECONNECT_BUDGET = 30.0  # default of proxy.reconnect_budget (s) before waiting requests get errors
EOF_GRACE = 1.0  # seconds to let in-flight answers out after stdin closes
BYE_WAIT = 0.3  # seconds the goodbye to the daemon may take at exit
JOIN_WAIT = 0.3  # seconds the exit waits for the submit and poll threads to notice
ORDER_WAIT = 1.0  # seconds a batch of output waits for an earlier one held by the other thread
MAIN_TICK = 0.1  # seconds between the main thread's looks at the signal flag

OUTCOME_UNKNOWN = -31001  # application range: outside JSON-RPC's reserved -32768…-32000
UNAVAILABLE = -31002

READ_ONLY_METHODS = frozenset({
    "initialize", "ping", "server/discover", "tools/list", "resources/list", "resources/read",
    "resources/templates/list", "prompts/list", "prompts/get", "completion/complete",
    "logging/setLevel", "resources/subscribe", "resources/unsubscribe",
})
REPLAYED_METHODS = ("logging/setLevel", "resources/subscribe", "resources/unsubscribe")
NOT_SENT = -1  # Pending.gen of a request no session has been given

#: Signals received (SIGINT/SIGTERM): the handler only records them; the main loop acts.
STOP_SIGNALS: list[int] = []
#: (read end, write end) of the pipe that wakes the main thread: the signal module writes
#: to it when a signal arrives, the stdin thread when stdin ends. Empty: poll instead.
WAKE_PIPE: list[int] = []


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM end the window cleanly (exit 0) instead of raising in any thread.

    The main thread then sleeps until something happens instead of looking at the flag
    ten times a second: an idle window costs no CPU (a thousand of them add up).
    """
    import signal

    def record(signum, frame):  # noqa: ARG001 - the signal module's signature
        STOP_SIGNALS.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, record)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    WAKE_PIPE[:] = [read_end, write_end]


def wake_main_thread() -> None:
    if WAKE_PIPE:
        try:
            os.write(WAKE_PIPE[1], b"\0")
        except OSError:
            pass  # full: the main thread has a wake-up waiting already


def output_id(line: str) -> tuple[bool, Any]:
    """``(is_response, id)`` of a line the session wrote; cheap for the session's own layout."""
    prefix = '{"jsonrpc":"2.0","id":'
    if line.startswith(prefix):
        try:
            value, end = _DECODER.raw_decode(line, len(prefix))
        except ValueError:
            pass
        else:
            return not line.startswith(',"method"', end), value
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError):
        return False, None
    if not isinstance(msg, dict):
        return False, None
    return ("method" not in msg and "id" in msg), msg.get("id")


_DECODER = json.JSONDecoder()


class Pending:
    """A request read from the client and not answered yet."""

    __slots__ = ("id", "key", "text", "method", "tool", "gen")

    def __init__(self, request: jsonrpc.Request):
        self.id = request.id
        self.key = jsonrpc.id_key(request.id)
        self.text = ""
        self.method = request.method
        params = request.params
        self.tool = params.get("name") if request.method == "tools/call" and isinstance(params, dict) else None
        self.gen = NOT_SENT  # generation of the session it was last given to


class Proxy:
    def __init__(self, reader: StdinReader, stdout: BinaryIO | int, connect, context: dict, *,
                 reconnect_budget: float = RECONNECT_BUDGET):
        """``connect()`` returns ``(submit_channel, poll_channel, session_id, info)``.

        ``info`` may carry ``readOnlyTools`` and ``lineLimit`` (the longest line, in
        bytes, the session can be sent: a daemon frame is capped).
        """
        self.reader = reader
        self._out = stdout
        self._connect = connect
        self.context = context
        self.reconnect_budget = reconnect_budget
        self._out_lock = threading.Lock()
        self._state = threading.Condition()
        self.pending: dict[Any, Pending] = {}
        self.swallow: set[Any] = set()
        self.init_request: jsonrpc.Request | None = None
        self.initialized = False
        self.state_requests: list[jsonrpc.Request] = []
        self.read_only_tools: frozenset[str] = frozenset()
        self.line_limit = MAX_LINE
        self.gen = 0
        self.submit_ch = self.poll_ch = None
        self.sid = ""
        self.closing = False
        self._reconnecting = False
        self._replays = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._eof = threading.Event()
        self._stop = threading.Event()  # set at exit: cuts every backoff sleep short
        self._order = threading.Condition()  # session output is written in batch order
        self._batch_gen = 0
        self._next_batch = 1
        self._threads: list[threading.Thread] = []

    # -- output ------------------------------------------------------------------------
    def write(self, line: str) -> None:
        data = line.encode("utf-8") + b"\n"
        if not self._out_lock.acquire(timeout=BYE_WAIT if self.closing else -1):
            return  # a write blocked on a client that stopped reading; we are leaving
        try:
            if isinstance(self._out, int):
                view = memoryview(data)
                while view:
                    view = view[os.write(self._out, view):]
            else:
                self._out.write(data)
                self._out.flush()
        except (OSError, ValueError):
            pass  # the client is gone; stdin EOF follows
        finally:
            self._out_lock.release()

    def reply_error(self, request_id: Any, code: int, message: str, data: Any = None) -> None:
        self.write(jsonrpc.dumps(jsonrpc.error(request_id, code, message, data)))

    def deliver(self, gen: int, line: str) -> None:
        """Write one line of session ``gen``'s output, unless it answers no pending request."""
        is_response, rid = output_id(line)
        if is_response and rid is not None:
            key = jsonrpc.id_key(rid) if jsonrpc.is_valid_id(rid) else None
            with self._state:
                if key in self.swallow:
                    self.swallow.discard(key)
                    return
                entry = self.pending.get(key)
                if entry is None or entry.gen != gen:
                    # Already answered (an error of ours, a cancel) or meant for a session
                    # we left: one id gets one answer.
                    log.debug("dropping a second or stale answer to id %r", rid)
                    return
                del self.pending[key]
                self._state.notify_all()
        self.write(line)

    def deliver_batch(self, gen: int, batch) -> None:
        """Write a numbered batch of the session's output, in the session's order.

        The submitter (answers ready at once) and the poller (everything else) both take
        batches; a batch waits (bounded) for the ones numbered before it. A batch of an
        older session is written as it comes: that session is gone.
        """
        seq, lines = batch
        if not lines:
            return
        with self._order:
            if gen > self._batch_gen:
                self._batch_gen, self._next_batch = gen, 1
            if gen == self._batch_gen:
                deadline = time.monotonic() + ORDER_WAIT
                while seq > self._next_batch and self.gen <= gen and not self.closing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        log.warning("batch %d of the session output never came; writing %d anyway", self._next_batch, seq)
                        break
                    self._order.wait(left)
            for line in lines:
                self.deliver(gen, line)
            if gen == self._batch_gen and seq >= self._next_batch:
                self._next_batch = seq + 1
                self._order.notify_all()

    def answer(self, entry: Pending, code: int, message: str, data: Any = None) -> None:
        """Answer ``entry`` with an error of ours, unless it has been answered already."""
        with self._state:
            if self.pending.get(entry.key) is not entry:
                return
            del self.pending[entry.key]
            self._state.notify_all()
        self.reply_error(entry.id, code, message, data)

    # -- connection --------------------------------------------------------------------
    def current(self):
        with self._state:
            return self.submit_ch, self.poll_ch, self.sid, self.gen

    def _open(self) -> None:
        """Connect, restore the client's session state on the new session, then publish it."""
        submit_ch, poll_ch, sid, info = self._connect()
        try:
            with self._state:
                gen = self.gen + 1
            for line in self._replay_lines():
                self.deliver_batch(gen, submit_ch.call("mcp", "submit", (sid, line), timeout=SUBMIT_TIMEOUT))
        except BaseException:
            for channel in (submit_ch, poll_ch):
                channel.close()
            raise
        with self._state:
            self.submit_ch, self.poll_ch, self.sid, self.gen = submit_ch, poll_ch, sid, gen
            self.read_only_tools = frozenset(info.get("readOnlyTools") or ())
            self.line_limit = int(info.get("lineLimit") or MAX_LINE)
            self._state.notify_all()

    def _replay_lines(self) -> list[str]:
        """The client's session state as lines for a new session, under ids whose answers we swallow."""
        with self._state:
            requests = [r for r in (self.init_request, *self.state_requests) if r is not None]
            initialized = self.initialized
        lines = []
        for number, request in enumerate(requests):
            with self._state:
                self._replays += 1
                replay_id = f"memesh-replay-{os.getpid()}-{self._replays}"
                self.swallow.add(jsonrpc.id_key(replay_id))
            message = {"jsonrpc": "2.0", "id": replay_id, "method": request.method}
            if request.params is not None:
                message["params"] = request.params
            lines.append(jsonrpc.dumps(message))
            if number == 0 and initialized:
                lines.append(jsonrpc.dumps(jsonrpc.notification("notifications/initialized")))
        return lines

    def reconnect(self, failed_gen: int) -> None:
        """Replace a lost session (or open the first). Single-flight: whoever notices first
        reconnects; everyone else waits for it, then retries on the new session."""
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
                    self._open()
                    break
                except Exception as exc:
                    if self.closing:
                        break
                    log.warning("daemon unavailable (%s); retrying", exc)
                if time.monotonic() - started > self.reconnect_budget:
                    self.fail_waiting(time.monotonic() - started)
                    started = time.monotonic()
                from memesh.backoff import next_delay

                self._stop.wait(next_delay(attempt))
                attempt += 1
        finally:
            with self._state:
                self._reconnecting = False
                self._state.notify_all()
        self.settle()

    def settle(self) -> None:
        """Requests a lost session may have run: resend the read-only ones, answer the rest."""
        with self._state:
            gen = self.gen
            resend, unknown = [], []
            for entry in self.pending.values():
                if 0 <= entry.gen < gen:
                    if self._read_only(entry):
                        entry.gen = NOT_SENT
                        resend.append(entry)
                    else:
                        unknown.append(entry)
        for entry in unknown:
            log.warning("request %r was in flight when the daemon went away; its outcome is unknown", entry.id)
            self.answer(entry, OUTCOME_UNKNOWN, "the memesh daemon restarted before answering; this request may or may not "
                                                "have taken effect — check before repeating it")
        for entry in resend:
            self._queue.put((entry.text, entry, jsonrpc.parse_line(entry.text)))

    def fail_waiting(self, waited: float) -> None:
        """No daemon for too long: answer every waiting request (none of them is sent later)."""
        with self._state:
            entries = list(self.pending.values())
        for entry in entries:
            if entry.gen >= 0 and not self._read_only(entry):
                self.answer(entry, OUTCOME_UNKNOWN, f"the memesh daemon stopped answering ({waited:.0f} s) after this request "
                                                    "was sent; it may or may not have taken effect — check before repeating it")
            else:
                self.answer(entry, UNAVAILABLE, f"the memesh daemon has been unavailable for {waited:.0f} s; this request was "
                                                "not run — retry in a moment (`memesh daemon status` shows what is wrong)")

    # -- input (the stdin thread) --------------------------------------------------------
    def _read_only(self, entry: Pending) -> bool:
        """Whether running ``entry`` twice is harmless (judged when it matters: the session's
        list of read-only tools is known only once a session is open)."""
        if entry.method in READ_ONLY_METHODS:
            return True
        return entry.method == "tools/call" and isinstance(entry.tool, str) and entry.tool in self.read_only_tools

    def on_item(self, item) -> None:
        try:
            if item is EOF:
                self._eof.set()
                wake_main_thread()
            elif item is OVERSIZE:
                self.write(jsonrpc.dumps(jsonrpc.oversize_reply()))
            else:
                self.handle(item)
        except Exception:
            log.exception("could not handle a line from the client")

    def handle(self, line: bytes) -> None:
        """Answer what cannot go on; queue the rest for the submitter. Never blocks on the daemon."""
        message = jsonrpc.parse_line(line)
        if message is None:
            return
        if isinstance(message, jsonrpc.Invalid):
            self.write(jsonrpc.dumps(message.reply))
            return
        limit = self.line_limit
        if len(line) > limit:
            if isinstance(message, jsonrpc.Request):
                self.reply_error(message.id, jsonrpc.INVALID_REQUEST,
                                 f"Invalid Request: the message is {len(line)} bytes and the memesh daemon accepts at most "
                                 f"{limit} (daemon.max_message_bytes); send smaller requests", {"maxBytes": limit})
            return
        entry = None
        if isinstance(message, jsonrpc.Request):
            entry = Pending(message)
            with self._state:
                duplicate = entry.key in self.pending
                if not duplicate:
                    self.pending[entry.key] = entry
            if duplicate:
                # Answering it with its id would give the client two answers for one id.
                self.reply_error(None, jsonrpc.INVALID_REQUEST,
                                 f"Invalid Request: id {json.dumps(message.id)} is already in use by a request in progress; "
                                 "this request was not run", {"id": message.id})
                return
        elif isinstance(message, jsonrpc.Notification):
            params = message.params if isinstance(message.params, dict) else {}
            if message.method == "notifications/cancelled" and jsonrpc.is_valid_id(params.get("requestId")):
                with self._state:
                    self.pending.pop(jsonrpc.id_key(params["requestId"]), None)  # its answer, if any, is dropped
                    self._state.notify_all()
        text = line.decode("utf-8")  # strict UTF-8 was checked by parse_line
        if entry is not None:
            entry.text = text
        self._queue.put((text, entry, message))

    def _remember(self, message) -> None:
        """Session state the client set up, replayed on every later session (once the
        session it was sent to has taken it: what never arrived is sent as itself)."""
        if isinstance(message, jsonrpc.Request):
            if message.method == "initialize":
                self.init_request = message
            elif message.method in REPLAYED_METHODS:
                with self._state:
                    self.state_requests.append(message)
        elif isinstance(message, jsonrpc.Notification) and message.method == "notifications/initialized":
            self.initialized = True

    # -- the submit thread -------------------------------------------------------------
    def submit_loop(self) -> None:
        self.reconnect(0)  # the first session, before any line needs it
        while not self.closing:
            item = self._queue.get()
            if item is None:
                return
            text, entry, message = item
            try:
                if self._submit(text, entry):
                    self._remember(message)
            except Exception as exc:
                log.exception("could not submit a line")
                if entry is not None:
                    self.answer(entry, jsonrpc.INTERNAL_ERROR, f"memesh could not pass this request on ({type(exc).__name__}: {exc})")

    def _submit(self, text: str, entry: Pending | None) -> bool:
        """Send one line to the current session (reconnecting as needed); whether it was taken."""
        while not self.closing:
            with self._state:
                if entry is not None and self.pending.get(entry.key) is not entry:
                    return False  # answered (an error of ours) or cancelled: never sent again
                submit_ch, sid, gen = self.submit_ch, self.sid, self.gen
                if submit_ch is not None and entry is not None:
                    entry.gen = gen  # from here on the session may have it
            if submit_ch is None:
                self.reconnect(gen)
                continue
            try:
                batch = submit_ch.call("mcp", "submit", (sid, text), timeout=SUBMIT_TIMEOUT)
            except (DaemonDraining, NotFound):
                self._not_taken(entry, gen)
                self.reconnect(gen)  # not taken: resend to the next daemon
                continue
            except ChannelBroken as exc:
                log.info("submit failed (sent=%s): %s", exc.sent, exc)
                if entry is not None and exc.sent:
                    self.reconnect(gen)  # maybe taken: settle() resends it only if read-only
                    self.settle()  # in case another thread had already reconnected
                    return False
                self._not_taken(entry, gen)
                self.reconnect(gen)
                continue
            except MessageTooLarge as exc:
                if entry is not None:
                    self.answer(entry, jsonrpc.INVALID_REQUEST, f"Invalid Request: {exc}; send smaller requests")
                return False
            except MemeshError as exc:
                if entry is not None:
                    self.answer(entry, jsonrpc.INTERNAL_ERROR, str(exc))
                return False
            self.deliver_batch(gen, batch)
            return True
        return False

    def _not_taken(self, entry: Pending | None, gen: int) -> None:
        if entry is not None:
            with self._state:
                if entry.gen == gen:
                    entry.gen = NOT_SENT

    # -- the poll thread ---------------------------------------------------------------
    def poll_loop(self) -> None:
        while not self.closing:
            _, poll_ch, sid, gen = self.current()
            if poll_ch is None:
                self.reconnect(gen)
                with self._state:
                    if self.poll_ch is None and not self.closing:
                        self._state.wait(0.5)  # the first session is opened by the submitter
                continue
            try:
                batch = poll_ch.call("mcp", "poll", (sid, POLL_TIMEOUT), timeout=POLL_TIMEOUT + 10.0)
            except Exception as exc:
                if self.closing:
                    return
                log.info("lost the session (%r); reconnecting", exc)
                self.reconnect(gen)
                continue
            try:
                self.deliver_batch(gen, batch)
            except Exception:
                log.exception("could not write the session's output")

    # -- the main thread ---------------------------------------------------------------
    def run(self) -> int:
        for name, target in (("submit", self.submit_loop), ("poll", self.poll_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()
        self.reader.attach(self.on_item)
        while not self._eof.is_set() and not STOP_SIGNALS:
            if WAKE_PIPE:
                select.select([WAKE_PIPE[0]], [], [])
                os.read(WAKE_PIPE[0], 512)
            else:
                self._eof.wait(MAIN_TICK)
        return self.finish(grace=not STOP_SIGNALS)

    def finish(self, grace: bool = True) -> int:
        """Leave: let answers in flight out (EOF only, bounded), say goodbye, close. Returns 0."""
        if grace:
            deadline = time.monotonic() + EOF_GRACE
            with self._state:
                while self.pending and time.monotonic() < deadline and not STOP_SIGNALS:
                    self._state.wait(min(MAIN_TICK, max(0.0, deadline - time.monotonic())))
        with self._state:
            self.closing = True
            self._state.notify_all()
            submit_ch, poll_ch = self.submit_ch, self.poll_ch
        self._stop.set()
        self._queue.put(None)
        if submit_ch is not None:
            # In a thread of its own: the channel may be busy with a call to a daemon that hangs.
            bye = threading.Thread(target=self._bye, args=(submit_ch,), name="bye", daemon=True)
            bye.start()
            bye.join(BYE_WAIT)
        for channel in (submit_ch, poll_ch):
            if channel is not None:
                channel.close()
        deadline = time.monotonic() + JOIN_WAIT
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return 0

    @staticmethod
    def _bye(channel) -> None:
        try:
            channel.call("control", "bye", timeout=BYE_WAIT)
        except Exception:
            pass


def daemon_connector(settings, context: dict):
    """``connect()`` for a Proxy: two channels to the daemon (started if needed) and a session."""
    from memesh import identity
    from memesh.daemon import wire
    from memesh.daemon.spawn import connect_compatible, ensure_daemon
    from memesh.paths import paths_for

    paths = paths_for(settings.home)
    session = os.urandom(16).hex()
    info = {**identity.identity(build=False), "session": session, "name": "mcp-proxy", "kind": "proxy",
            "pid": os.getpid(), "cwd": context.get("cwd", ""), "heartbeat": max(settings.seconds("daemon.heartbeat_interval"), POLL_TIMEOUT)}

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
        # The longest line whose submit frame the daemon still reads (a pickled str is its UTF-8).
        overhead = len(wire.dumps(("mcp", "submit", (opened["sid"], "x" * 256), {}))) - 256 + 8
        line_limit = min(MAX_LINE, settings["daemon.max_message_bytes"] - overhead)
        return submit_ch, poll_ch, opened["sid"], {**opened, "lineLimit": line_limit}

    return connect


def local_connector(settings, context: dict):
    """``connect()`` for standalone mode: an in-process session on the same database, or,
    when the home cannot be used, a host that answers every request with the reason."""

    def connect():
        from memesh.mcp.standalone import LocalChannel, LocalHost, UnusableHost, unusable_home_reason

        try:
            from memesh.daemon.services import open_local_services

            host: Any = LocalHost(open_local_services(settings))
        except Exception as exc:
            reason = unusable_home_reason(settings.home, exc)
            print(f"memesh: {reason}", file=sys.stderr)
            host = UnusableHost(reason)
        channel = LocalChannel(host)
        opened = host.open(context)
        return channel, channel, opened["sid"], opened

    return connect


def unusable_connector(reason: str):
    """``connect()`` serving only the error ``reason`` (e.g. the settings cannot be read)."""

    def connect():
        from memesh.mcp.standalone import LocalChannel, UnusableHost

        host = UnusableHost(reason)
        channel = LocalChannel(host)
        opened = host.open({})
        return channel, channel, opened["sid"], opened

    return connect


def with_fallback(first, fallback):
    """``connect()`` that uses ``first`` unless its first attempt fails; then ``fallback`` for good."""
    chosen: list = []

    def connect():
        if not chosen:
            try:
                opened = first()
            except Exception as exc:
                print(f"memesh: the shared daemon is unavailable ({exc}); serving this window standalone", file=sys.stderr)
                chosen.append(fallback)
            else:
                chosen.append(first)
                return opened
        return chosen[0]()

    return connect


def serve(settings, reader: StdinReader, stdout: BinaryIO | int | None = None, *, standalone: bool = False,
          problem: str | None = None) -> int:
    """Serve one window: through the daemon, standalone when asked or disabled or when the
    daemon cannot be used, or (``problem``) with only an error saying what is wrong."""
    out = stdout if stdout is not None else sys.stdout.fileno()
    context = {"cwd": os.getcwd(), "pid": os.getpid()}
    agent_name = os.environ.get("MEMESH_AGENT_NAME")  # the window's own A2A name, if its user chose one
    if agent_name:
        context["agentName"] = agent_name
    budget = RECONNECT_BUDGET
    if problem is not None:
        connect = unusable_connector(problem)
    elif settings.daemon_enabled and not standalone:
        connect = with_fallback(daemon_connector(settings, context), local_connector(settings, context))
        budget = settings.seconds("proxy.reconnect_budget")
    else:
        connect = local_connector(settings, context)
    return Proxy(reader, out, connect, context, reconnect_budget=budget).run()
