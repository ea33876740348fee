"""The hardened manager server: the daemon's side of the Unix socket.

Every shared typeid is listed once, with its explicit ``exposed`` list, in :data:`TYPEIDS`;
``MeshManager`` (memesh.daemon.manager) registers them for clients. The daemon serves one
long-lived instance of each typeid under a fixed ident equal to its typeid, so a client
needs no ``create``/``incref``/``decref`` round trips: one authenticated connection in
``accept_connection`` mode reaches every shared object (the stock client opens six
connections for one call).

``MeshServer`` keeps ``managers.Server``'s request format and dispatch rules and replaces
the parts that cannot be hardened from outside:

* accept loop: connection cap (a full daemon answers a ``#FULL`` frame the client reports,
  and keeps a few slots for the CLI so ``status`` works), back-off on EMFILE/ENFILE and
  on thread exhaustion, stop flag checked twice a second;
* a watchdog (:meth:`MeshServer.watchdog`, called by the daemon loop) restarts the accept
  thread if it died, and gives up (the daemon exits) if it keeps dying; uncaught
  exceptions of every thread go to the daemon log;
* each connection: peer-uid check (SO_PEERCRED), authentication within a deadline,
  kernel send timeout, 10 MiB message cap that keeps the stream aligned, and a deadline
  for the rest of a message once its header came (a huge header then silence is cut);
* at start: the descriptor limit is raised to what the daemon may need (soft -> hard),
  and connection threads get a small stack (one thread per connection, thousands of them);
* per-client state: every connection is registered with the ClientRegistry and released
  on EOF, never through reference counts;
* the socket is created 0600 (umask at bind), and only *our* inode is ever unlinked.
"""
from __future__ import annotations

import errno
import logging
import os
import resource
import socket
import threading
import time
from multiprocessing import connection as mpc
from multiprocessing import managers, process
from traceback import format_exc

from memesh.daemon import clients as clientmod
from memesh.daemon import wire
from memesh.daemon.shutdown import ShutdownCoordinator
from memesh.errors import DaemonFull, MessageTooLarge, ProtocolError

log = logging.getLogger(__name__)

ACCEPT_POLL = 0.5  # seconds between checks of the stop flag while idle in accept()
SEND_TIMEOUT = 30.0  # a client that stops reading must not pin a server thread forever
EMFILE_BACKOFF = (0.05, 1.0)  # first and longest pause when out of file descriptors
HANDSHAKE_MAX = 4096  # the accept_connection request is tiny
CLOSE_GRACE = 1.0  # seconds for serving threads to answer queued requests at shutdown
RESERVED_SLOTS = 4  # connections over the cap kept for the CLI (status, stop) of a full daemon
RESERVED_NAMES = frozenset({"memesh-cli"})  # session names that may use the reserved slots
FDS_PER_CONNECTION = 2  # the accepted socket and the dup served by mpc.Connection
FD_HEADROOM = 256  # database, log, pipes, imports
THREAD_STACK = 512 * 1024  # bytes per new thread: serving threads are shallow, thousands may run
RESTARTS_ALLOWED = 3  # accept-thread restarts within RESTART_WINDOW before the daemon gives up
RESTART_WINDOW = 60.0
#: Test-only: set in the daemon's environment, makes the accept thread raise after
#: accepting one connection (a real thread death for the watchdog tests).
FAULT_ENV = "MEMESH_TEST_FAULT"


def fd_limit_target(soft: int, hard: int, wanted: int) -> int:
    """Pure: the soft RLIMIT_NOFILE to ask for: ``wanted`` if the hard limit allows, never lower."""
    infinite = resource.RLIM_INFINITY
    ceiling = hard if hard != infinite else max(wanted, soft if soft != infinite else wanted)
    if soft == infinite:
        return soft
    return max(soft, min(wanted, ceiling))


def raise_fd_limit(max_connections: int) -> tuple[int, int]:
    """Let the daemon open the descriptors its connection cap implies; returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = fd_limit_target(soft, hard, (max_connections + RESERVED_SLOTS) * FDS_PER_CONNECTION + FD_HEADROOM)
    if target != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("could not raise the descriptor limit from %s to %s: %s", soft, target, exc)
            return soft, soft
    if target < max_connections * FDS_PER_CONNECTION + FD_HEADROOM:
        log.warning("descriptor limit %s allows fewer than daemon.max_connections (%s) connections", target, max_connections)
    return soft, target


def slots_short(open_slots: int, max_connections: int) -> bool:
    """Pure: is the daemon close enough to its cap that idle connections must give way?"""
    return max_connections - open_slots <= max(1, max_connections // 10)


def log_thread_exception(args) -> None:
    """``threading.excepthook``: a thread that dies of an exception says so in the daemon log."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    log.error("thread %s died: %s", name, args.exc_value, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def restart_allowed(restarts: list[float], now: float, allowed: int = RESTARTS_ALLOWED, window: float = RESTART_WINDOW) -> bool:
    """Pure: may a dead thread be restarted, given the times of its earlier restarts?"""
    return sum(1 for t in restarts if now - t < window) < allowed

#: typeid -> (exposed methods, tracked as in-flight work?). Control calls are never
#: refused while draining; the mcp host tracks its requests itself (asynchronously).
TYPEIDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "control": (("hello", "ping", "heartbeat", "bye", "status", "stop", "request_upgrade"), False),
    "mcp": (("open", "submit", "poll", "close"), False),  # tracks its requests itself
    "graph": (
        (
            "create_entities",
            "create_relations",
            "add_observations",
            "delete_entities",
            "delete_observations",
            "delete_relations",
            "read_graph",
            "search_nodes",
            "open_nodes",
            "stats",
        ),
        True,
    ),
    "memory": (("remember", "recall", "forget", "list", "stats"), True),
    "a2a": (("agents", "inbox", "tasks", "get_task", "send", "reply", "cancel", "wait", "status"), True),
}


class MeshServer(managers.Server):
    public = ["accept_connection", "dummy"]

    def __init__(self, registry, address, authkey, serializer="pickle", *, objects=None, clients=None, coordinator=None, settings=None):
        # Not calling super().__init__: it would create a stock Listener we cannot harden.
        self.registry = registry
        self.authkey = process.AuthenticationString(authkey)
        self.address = address
        self.id_to_obj = {"0": (None, ())}
        self.id_to_refcount = {}
        self.id_to_local_proxy_obj = {}
        self.mutex = threading.Lock()
        self.stop_event = threading.Event()
        self.clients = clients or clientmod.ClientRegistry()
        self.coordinator = coordinator or ShutdownCoordinator(0)
        self.auth_timeout = settings.seconds("daemon.auth_timeout") if settings else 10.0
        self.max_bytes = settings["daemon.max_message_bytes"] if settings else 10 * 1024 * 1024
        self.max_connections = settings["daemon.max_connections"] if settings else 4096
        self.message_timeout = settings.seconds("daemon.message_timeout") if settings else 30.0
        self._slots = 0  # connection threads running (counted by the accept thread, before registration)
        self._slots_lock = threading.Lock()
        self._restarts: list[float] = []
        self.tracked: set[str] = set()
        #: called in each connection thread as it ends (e.g. closing its SQLite connection)
        self.thread_exit_hooks: list = []
        for ident, obj in (objects or {}).items():
            if ident not in TYPEIDS:
                raise ValueError(f"typeid {ident!r} is not registered in TYPEIDS")
            exposed, tracked = TYPEIDS[ident]
            self.id_to_obj[ident] = (obj, exposed, None)
            if tracked:
                self.tracked.add(ident)
        self._listener = self._bind(address)
        self._inode = os.stat(address)[1:3]
        self._accept_thread: threading.Thread | None = None
        self._refused_logged = 0

    # -- socket ----------------------------------------------------------------------
    @staticmethod
    def _bind(path: str) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600; no chmod window
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(128)
        sock.settimeout(ACCEPT_POLL)
        return sock

    def socket_is_ours(self) -> bool:
        """Does the path still name the socket we bound? (A newer daemon may have replaced it.)"""
        try:
            st = os.lstat(self.address)
        except OSError:
            return False
        return (st.st_ino, st.st_dev) == self._inode

    def start(self) -> None:
        threading.excepthook = log_thread_exception
        raise_fd_limit(self.max_connections)
        try:
            threading.stack_size(THREAD_STACK)
        except (ValueError, RuntimeError) as exc:
            log.debug("thread stack size left at the default: %s", exc)
        self._start_accepter()

    def _start_accepter(self) -> None:
        self._accept_thread = threading.Thread(target=self.accepter, name="mesh-accept", daemon=True)
        self._accept_thread.start()

    def watchdog(self) -> str | None:
        """Called by the daemon loop: restart a dead accept thread; a reason to exit if that fails.

        Without the accept thread the daemon looks alive (lock held, record fresh) and
        answers nobody new.
        """
        thread = self._accept_thread
        if thread is None or thread.is_alive() or self.stop_event.is_set():
            return None
        now = time.monotonic()
        if self._listener.fileno() < 0 or not restart_allowed(self._restarts, now):
            reason = f"watchdog: the accept thread died {len(self._restarts) + 1} times; exiting so a new daemon can take over"
            log.error("%s", reason)
            return reason
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW] + [now]
        log.error("watchdog: the accept thread had died; restarting it (%d in %.0fs)", len(self._restarts), RESTART_WINDOW)
        self._start_accepter()
        return None

    def reap_idle(self, limit: float) -> int:
        """Called by the daemon loop: when slots are short, free those of silent hello-less connections."""
        if not slots_short(self._slots, self.max_connections):
            return 0
        return self.clients.kick_idle(limit)

    def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stop accepting, answer what is already queued, cut every connection, unlink our socket.

        Connections are first shut for reading only: each serving thread still answers
        the requests already in its socket (tracked work with DaemonDraining), then
        sees EOF. Only stragglers are cut hard after ``grace`` seconds.
        """
        self.stop_event.set()
        try:
            # shutdown() wakes an accept() blocked in another thread (Linux); close() alone
            # would leave the accept thread sleeping out its poll interval.
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=2 * ACCEPT_POLL)
        if self.socket_is_ours():
            try:
                os.unlink(self.address)
            except OSError:
                pass
        self.clients.kick_all(socket.SHUT_RD)
        deadline = time.monotonic() + grace
        while self.clients.connection_count and time.monotonic() < deadline:
            time.sleep(0.005)  # serving threads finish their queued requests, then see EOF
        self.clients.kick_all()

    # -- accept loop -----------------------------------------------------------------
    def accepter(self) -> None:
        pause = EMFILE_BACKOFF[0]
        fault = os.environ.get(FAULT_ENV) == "accept-thread"
        while not self.stop_event.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if self.stop_event.is_set():
                    return
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("out of file descriptors (%s); pausing accept for %.2fs", exc.strerror, pause)
                    self.stop_event.wait(pause)
                    pause = min(pause * 2, EMFILE_BACKOFF[1])
                    continue
                if exc.errno in (errno.EINTR, errno.ECONNABORTED, errno.EAGAIN, errno.EPROTO):
                    continue
                raise  # the listener itself is broken: the watchdog decides
            pause = EMFILE_BACKOFF[0]
            sock.setblocking(True)
            if self._slots >= self.max_connections + RESERVED_SLOTS:
                self._refuse_full(sock)
                continue
            with self._slots_lock:
                self._slots += 1
            try:
                threading.Thread(target=self._serve_slot, args=(sock,), name="mesh-conn", daemon=True).start()
            except RuntimeError as exc:  # can't start new thread: out of memory or threads
                with self._slots_lock:
                    self._slots -= 1
                log.warning("could not start a thread for a new connection (%s); refusing it, pausing accept for %.2fs", exc, pause)
                sock.close()
                self.stop_event.wait(pause)
                pause = min(pause * 2, EMFILE_BACKOFF[1])
            if fault:
                raise RuntimeError(f"fault injected by {FAULT_ENV}=accept-thread")

    def _refuse_full(self, sock: socket.socket) -> None:
        """Tell the peer the daemon is full (one small frame, never blocking), then close."""
        if self._refused_logged % 100 == 0:
            log.warning("refusing connection: %d connections open (daemon.max_connections is %d)", self._slots, self.max_connections)
        self._refused_logged += 1
        try:
            sock.setblocking(False)
            sock.send(wire.full_frame(self._slots, self.max_connections))
        except OSError:
            pass
        sock.close()

    def _serve_slot(self, sock: socket.socket) -> None:
        try:
            self.handle_request(sock)
        finally:
            with self._slots_lock:
                self._slots -= 1

    # -- one connection --------------------------------------------------------------
    def handle_request(self, sock: socket.socket) -> None:
        conn = None
        c = None
        try:
            pid, uid = wire.peer_credentials(sock)
            if uid != os.getuid():
                log.warning("refused connection from uid %s (pid %s): not the daemon's user", uid, pid)
                return
            conn = self.clients.open(sock, pid, uid)
            wire.set_timeouts(sock, receive=self.auth_timeout, send=self.auth_timeout)
            c = mpc.Connection(os.dup(sock.fileno()))
            try:
                mpc.deliver_challenge(c, self.authkey)
                mpc.answer_challenge(c, self.authkey)
                request = wire.read_object(c.fileno(), HANDSHAKE_MAX)
                _, funcname, _args, _kwds = request
            except mpc.AuthenticationError as exc:
                log.warning("rejected connection from pid %s: %s", pid, exc)
                return
            except (OSError, EOFError, ValueError, TypeError, MessageTooLarge) as exc:
                log.info("dropped connection from pid %s before it authenticated: %s", pid, exc or type(exc).__name__)
                return
            if funcname == "dummy":
                c.send(("#RETURN", None))
                return
            if funcname != "accept_connection":
                c.send(("#TRACEBACK", f"{funcname!r} is not served by this daemon"))
                return
            if self._slots > self.max_connections and not _reserved(_args):
                log.info("refusing a session of pid %s: the daemon is full (%d connections)", pid, self._slots - 1)
                c.send(("#ERROR", DaemonFull(wire.full_message(self._slots - 1, self.max_connections, self.address))))
                return
            c.send(("#RETURN", None))
            conn.authenticated = True
            wire.set_timeouts(sock, receive=0, send=SEND_TIMEOUT)
            self.serve_client(c, conn)
        except Exception:
            log.exception("connection handler failed")
        finally:
            if c is not None:
                c.close()
            if conn is not None:
                clientmod.set_current(None)
                if conn.client is None:  # never said hello: its work was counted per connection
                    self.coordinator.forget_client(f"conn-{conn.id}")
                self.clients.close(conn)
            sock.close()
            for hook in self.thread_exit_hooks:
                try:
                    hook()
                except Exception:
                    log.exception("releasing per-thread resources")

    def serve_client(self, c: mpc.Connection, conn: clientmod.Connection) -> None:
        clientmod.set_current(conn)
        fd = c.fileno()
        send = c.send
        id_to_obj = self.id_to_obj
        coordinator = self.coordinator
        sock = conn.sock
        message_timeout = self.message_timeout
        while True:  # ends at EOF: close() shuts reads so queued requests are answered first
            try:
                request = wire.read_object(fd, self.max_bytes, sock, message_timeout)
            except MessageTooLarge as exc:
                log.warning("pid %s sent an oversize message: %s", conn.peer_pid, exc)
                msg = ("#ERROR", exc)
            except (TimeoutError, BlockingIOError):
                log.warning("pid %s began a message and did not finish it within %.0fs; closing its connection", conn.peer_pid, message_timeout)
                return
            except (EOFError, OSError):
                return
            except Exception as exc:  # an unpicklable payload; the stream is still aligned
                msg = ("#ERROR", ProtocolError(f"could not decode the request: {exc!r}"))
            else:
                counted = self.clients.call_started(conn)
                try:
                    msg = self._dispatch(request, conn, id_to_obj, coordinator)
                finally:
                    self.clients.call_ended(conn, counted)
            try:
                try:
                    send(msg)
                except Exception:
                    send(("#UNSERIALIZABLE", format_exc()))
            except Exception as exc:
                log.info("lost connection to pid %s while replying: %r", conn.peer_pid, exc)
                return

    def _dispatch(self, request, conn, id_to_obj, coordinator):
        try:
            ident, methodname, args, kwds = request
            obj, exposed, _ = id_to_obj[ident]
            if not isinstance(methodname, str) or not isinstance(args, tuple) or not isinstance(kwds, dict):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            return ("#ERROR", ProtocolError(f"malformed request {str(request)[:200]!r}"))
        if methodname not in exposed:
            fallback = self.fallback_mapping.get(methodname)
            if fallback is None or methodname == "#GETVALUE":
                return ("#ERROR", AttributeError(f"method {methodname!r} of {ident} is not exposed"))
            try:
                return ("#RETURN", fallback(self, None, ident, obj, *args, **kwds))
            except Exception as exc:
                return ("#ERROR", exc)
        tracked = ident in self.tracked
        try:
            if tracked:
                client = conn.client.session if conn.client else f"conn-{conn.id}"
                coordinator.begin(client)
                try:
                    result = getattr(obj, methodname)(*args, **kwds)
                finally:
                    coordinator.end()
            else:
                result = getattr(obj, methodname)(*args, **kwds)
        except Exception as exc:
            return ("#ERROR", exc)
        return ("#RETURN", result)


def _reserved(args) -> bool:
    """Is this session (``accept_connection``'s name argument) one the reserved slots are for?"""
    return isinstance(args, tuple) and len(args) == 1 and args[0] in RESERVED_NAMES

