"""The daemon process: start-up, the main loop, and the orderly exit.

Start-up order matters (each step relies on the previous one):

1. take the lifetime lock (if another daemon holds it, say "busy" and exit 0);
2. with the lock held, anything left in the record, socket or key is stale: clear it;
3. write a fresh authkey (0600), bind the socket (0600), open the shared objects;
4. publish the lock record (atomic link), start serving, push "ready" to the spawner.

The main thread then only waits on a self-pipe: signal handlers and the control object
write a byte to wake it, and it acts (drain, stop, idle exit, record/socket checks).
Exit releases in reverse order and drops the lifetime lock last, so "the lifetime lock
is free" always means "this daemon is gone and has cleaned up (or crashed)".

Run as ``python -m memesh.daemon.process`` (spawned detached by a client).
"""
from __future__ import annotations

import logging
import os
import platform
import select
import signal
import stat
import sys
import threading
import time
import uuid

import psutil

from memesh import identity
from memesh.backoff import backoff_delay
from memesh.config import Settings, load_settings
from memesh.daemon import lock as lockmod
from memesh.daemon.clients import ClientRegistry
from memesh.daemon.control import Control
from memesh.daemon.server import CLOSE_GRACE, MeshServer
from memesh.daemon.shutdown import DRAINING, RUNNING, STOPPED, ShutdownCoordinator
from memesh.logsetup import configure_daemon
from memesh.paths import ensure_layout, paths_for, write_private

log = logging.getLogger("memesh.daemon")

READY_FD_ENV = "MEMESH_READY_FD"
DAEMONIZE_ENV = "MEMESH_DAEMONIZE"
CHECK_INTERVAL = 1.0  # seconds between checks that the socket and record are still ours
TICK = 0.5  # longest sleep of the main loop when nothing is due sooner
KEY_BYTES = 32
RECORD_RETRY_CAP = 10.0  # seconds: longest pause between attempts to rewrite the record
FLUSH_LIMIT = 2.0  # seconds a graceful stop waits for windows to collect computed answers


class Daemon:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.paths = paths_for(settings.home)
        self.pid = os.getpid()
        self.instance_id = str(uuid.uuid4())
        self.start_time = time.time()
        self.coordinator = ShutdownCoordinator(settings.seconds("daemon.idle_timeout"))
        self._count_lock = threading.Lock()
        self._counted_clients = 0
        self.clients = ClientRegistry(on_change=self._clients_changed)
        self.clients.on_client_gone(self.coordinator.forget_client)
        self.lifetime = lockmod.LifetimeLock(self.paths.lifetime_lock)
        self.server: MeshServer | None = None
        self.services: dict = {}
        self._closers: list = []
        self._thread_hooks: list = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._record: lockmod.LockRecord | None = None
        self._key: bytes | None = None
        self._published: tuple[int, int] = (-1, -1)  # (clientCount, a2aPort) last written
        self._record_failures = 0
        self._record_retry_at = 0.0  # monotonic time before which a failed record write is not retried
        self._signals: list[int] = []
        self.abandoned = 0  # calls still running when a forced stop closed the server
        self.failed = False  # the server's watchdog gave up: exit non-zero
        self.front_door = None   # the A2A front door (memesh.a2a.frontdoor), started after ready
        self.a2a_port = 0
        # What status says about the storage; replaced by memesh.daemon.services once it is open.
        self.storage_status = lambda: {"storage": "", "storageAvailable": False}

    # -- helpers used by Control -------------------------------------------------------
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: the main loop is already due to wake

    def _clients_changed(self) -> None:
        # A window or library client arriving or leaving is activity: the idle clock
        # restarts from here, so the daemon exits one idle timeout after the last client
        # left, not earlier. CLI clients (`memesh daemon status` polled by a script) come
        # and go without changing the count and are not activity.
        with self._count_lock:
            count = self.clients.count()
            changed, self._counted_clients = count != self._counted_clients, count
        if changed:
            self.coordinator.touch()
        self._wake()

    def record_handover(self, info: dict, pid: object) -> None:
        """Note which installation asked for the upgrade (see ``memesh.daemon.handover``)."""
        from memesh.daemon import handover

        version = str(info.get("version") or "")
        try:
            if handover.record(self.paths, version=version, pid=pid if isinstance(pid, int) else 0,
                               executable=str(info.get("executable") or ""), daemon_version=identity.__version__):
                log.info("memesh %s (pid %s, %s) asked for an upgrade; it starts the next daemon", version, pid,
                         info.get("executable") or "interpreter unknown")
        except OSError as exc:
            log.warning("could not write the handover marker (%s); older clients may restart this version", exc)

    def request_stop(self, reason: str, force: bool = False) -> None:
        self.coordinator.request_stop(reason, force=force)
        self._wake()

    def identity(self) -> dict:
        return {
            "pid": self.pid,
            "instanceId": self.instance_id,
            "version": identity.__version__,
            "protocol": identity.PROTOCOL_VERSION,
            "minClientVersion": identity.MIN_CLIENT_VERSION,
            "build": identity.build_id(),
            "python": platform.python_version(),
            "state": self.coordinator.state,
            "home": str(self.paths.home),
        }

    def status(self) -> dict:
        snapshot = self.coordinator.snapshot()
        clients = self.clients.rows()
        idle_left = self.coordinator.idle_left(self.clients.count())
        return {
            "mode": "daemon",
            **self.identity(),
            "startTime": int(self.start_time * 1000),
            "uptimeSeconds": round(time.time() - self.start_time, 3),
            "socketPath": str(self.paths.socket),
            "lockPath": str(self.paths.record),
            "logPath": str(self.paths.log),
            "dbPath": str(self.paths.db),
            **self.storage_status(),
            "clientCount": self.clients.count(),
            "clients": clients,
            "connections": self.clients.connection_count,
            "inflight": snapshot["inflight"],
            "idleTimeoutMs": self.settings["daemon.idle_timeout"],
            "idleSecondsLeft": None if idle_left is None else round(idle_left, 3),
            "metrics": snapshot,
            "rssBytes": psutil.Process().memory_info().rss,
            "threads": threading.active_count(),
            "a2aPort": self.a2a_port,
        }

    # -- start-up ----------------------------------------------------------------------
    def _clear_leftovers(self) -> None:
        record, present = lockmod.read_record(self.paths.record)
        if present and record is None:
            log.warning("lock record %s was not valid JSON of a daemon record; replacing it", self.paths.record)
        elif record is not None:
            log.info("clearing the record of a previous daemon (pid %s) that is no longer running", record.pid)
        lockmod.remove_record_if(self.paths.record, None)
        # Only the computed path, and only if it is a socket: a damaged record must
        # never make the daemon unlink an arbitrary file it names.
        try:
            if stat.S_ISSOCK(os.lstat(self.paths.socket).st_mode):
                os.unlink(self.paths.socket)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove stale socket %s: %s", self.paths.socket, exc)

    def _open_services(self) -> dict:
        """The shared objects besides control (see ``memesh.daemon.services``)."""
        from memesh.daemon.services import open_services

        services, closers, self._thread_hooks = open_services(self)
        self._closers.extend(closers)
        return services

    def _make_record(self) -> lockmod.LockRecord:
        return lockmod.LockRecord(
            pid=self.pid,
            instanceId=self.instance_id,
            socketPath=str(self.paths.socket),
            startTime=int(self.start_time * 1000),
            version=identity.__version__,
            clientCount=self.clients.count(),
            protocolVersion=identity.PROTOCOL_VERSION,
            minClientVersion=identity.MIN_CLIENT_VERSION,
            processCreateTime=psutil.Process().create_time(),
            buildId=identity.build_id(),
            pythonVersion=platform.python_version(),
            a2aPort=self.a2a_port,
        )

    def start(self) -> bool:
        ensure_layout(self.paths)
        if not self.lifetime.acquire(wait=1.0):
            log.info("another daemon holds %s; not starting a second one", self.paths.lifetime_lock)
            return False
        if not self.lifetime.still_at_path():  # deleted between our open and our lock: not the daemon's lock
            self.lifetime.release()
            log.info("%s was replaced while this daemon locked it; not starting", self.paths.lifetime_lock)
            return False
        self.lifetime.write_holder({"pid": self.pid, "createTime": psutil.Process().create_time(), "instanceId": self.instance_id})
        self._clear_leftovers()
        key = os.urandom(KEY_BYTES)
        write_private(self.paths.key, key)
        self._key = key
        self.services = self._open_services()
        objects = {"control": Control(self), **self.services}
        self.server = MeshServer(
            None,
            str(self.paths.socket),
            key,
            objects=objects,
            clients=self.clients,
            coordinator=self.coordinator,
            settings=self.settings,
        )
        self.server.thread_exit_hooks.extend(self._thread_hooks)
        self._record = self._make_record()
        lockmod.publish_record(self.paths.record, self._record)
        self._published = (self._record.clientCount, self._record.a2aPort)
        self.server.start()
        self._settle_handover()
        self.coordinator.touch()  # the idle clock starts when the daemon is ready, not when it began starting
        self.coordinator.transition(RUNNING, "ready")
        log.info(
            "daemon %s ready: pid %s, version %s, protocol %s, socket %s",
            self.instance_id[:8],
            self.pid,
            identity.__version__,
            identity.PROTOCOL_VERSION,
            self.paths.socket,
        )
        return True

    def _settle_handover(self) -> None:
        from memesh.daemon import handover

        try:
            handover.settle(self.paths, identity.__version__)
        except OSError as exc:
            log.warning("could not clear the handover marker: %s", exc)

    # -- main loop ---------------------------------------------------------------------
    def _on_signal(self, signum, _frame) -> None:
        self._signals.append(signum)
        self._wake()

    def _check_record(self) -> None:
        record, present = lockmod.read_record(self.paths.record)
        if record is not None and record.instanceId == self.instance_id:
            return
        if self._record_failures:
            pass  # already failing to write it: _write_record reports (rarely) and retries
        elif present and record is None:
            log.warning("lock record %s was damaged; rewriting it", self.paths.record)
        elif record is not None:
            log.warning("lock record names another daemon (pid %s) while this one holds the lifetime lock; rewriting it", record.pid)
        else:
            log.warning("lock record %s disappeared; rewriting it", self.paths.record)
        self._write_record(self._make_record())

    def _lost_ownership(self) -> str:
        """Why this daemon no longer owns its files ("" while it does)."""
        if not self.lifetime.still_at_path():
            return f"lifetime lock {self.paths.lifetime_lock} was removed or replaced"
        if not self.server.socket_is_ours():
            return f"socket {self.paths.socket} was removed or replaced"
        return ""

    def _key_is_ours(self) -> bool:
        try:
            return self._key is not None and self.paths.key.read_bytes() == self._key
        except OSError:
            return False

    def _check_key(self) -> None:
        """Put our key back if it went missing or changed: clients need it to reach us."""
        if self._key is None or self._key_is_ours():
            return
        try:
            write_private(self.paths.key, self._key)
            log.warning("authkey %s was missing or changed; rewrote it", self.paths.key)
        except OSError as exc:
            log.warning("authkey %s is missing or changed and could not be rewritten: %s", self.paths.key, exc)

    def _write_record(self, record: lockmod.LockRecord) -> bool:
        """Rewrite the record; a failure (disk full, read-only home) is logged and retried
        later with backoff, never fatal: the lifetime lock, not the record, is the proof of
        life, and clients find the daemon at its socket meanwhile."""
        self._record = record
        if time.monotonic() < self._record_retry_at:
            return False
        if not self.lifetime.still_at_path():
            return False  # the files are no longer ours (the loop notices and stops)
        try:
            lockmod.update_record(self.paths.record, record)
        except OSError as exc:
            self._record_failures += 1
            delay = backoff_delay(self._record_failures - 1, base=0.5, cap=RECORD_RETRY_CAP, rand=0.0)
            self._record_retry_at = time.monotonic() + delay
            if self._record_failures == 1 or self._record_failures % 20 == 0:
                log.warning("could not rewrite the lock record %s (%s; attempt %d); serving on and retrying in %.1fs",
                            self.paths.record, exc, self._record_failures, delay)
            return False
        if self._record_failures:
            log.info("lock record %s rewritten after %d failed attempt(s)", self.paths.record, self._record_failures)
        self._record_failures = 0
        self._record_retry_at = 0.0
        return True

    def loop(self) -> None:
        next_check = time.monotonic() + CHECK_INTERVAL
        while True:
            idle_left = self.coordinator.idle_left(self.clients.count())
            timeout = min(TICK, max(0.0, next_check - time.monotonic()))
            if idle_left is not None:
                timeout = min(timeout, idle_left)
            readable, _, _ = select.select([self._wake_r], [], [], timeout)
            if readable:
                os.read(self._wake_r, 4096)
            while self._signals:
                signum = self._signals.pop()
                self.coordinator.request_stop(f"signal {signal.Signals(signum).name}")
            state = self.coordinator.state
            if state in (DRAINING, STOPPED):
                return
            if idle_left is not None and self.coordinator.idle_left(self.clients.count()) == 0:
                self.coordinator.request_stop("idle timeout")
                return
            count = self.clients.count()
            published = (count, self.a2a_port)
            if published != self._published and self._record is not None:
                if self._write_record(self._record._replace(clientCount=count, a2aPort=self.a2a_port)):
                    self._published = published
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_INTERVAL
                lost = self._lost_ownership()
                if lost:
                    log.error("%s; this daemon can no longer be found, so it finishes its calls and exits, touching "
                              "no file it does not own", lost)
                    self.coordinator.request_stop(lost)
                    return
                self._check_key()
                self._check_record()
                self.clients.reap()
                self.clients.kick_unauthenticated(self.settings.seconds("daemon.auth_timeout"))
                self.server.reap_idle(self.settings.seconds("daemon.idle_connection_timeout"))
                failure = self.server.watchdog()
                if failure:
                    self.failed = True
                    self.coordinator.request_stop(failure, force=True)
                    return

    # -- the A2A front door (after ready: spawn->ready does not pay for uvicorn) -------------
    def start_front_door(self) -> None:
        hub = self.services.get("a2a")
        if hub is None:
            return
        from memesh.a2a.frontdoor import FrontDoor

        def on_port(port: int) -> None:
            self.a2a_port = port
            self._wake()   # the main loop publishes it in the lock record

        self.front_door = FrontDoor(hub, self.settings, self.coordinator, self.paths.home, on_port=on_port)
        self.front_door.start()

    def shutdown(self) -> None:
        coordinator = self.coordinator
        if self.front_door is not None:
            self.front_door.drain()   # blocking SendMessage calls answer now; new requests get 503
        if not coordinator.forced:
            drained = coordinator.wait_drained(self.settings.seconds("daemon.drain_timeout"))
            if not drained:
                log.warning("drain timeout: %d call(s) still in flight; stopping anyway", coordinator.inflight)
                coordinator.forced = True
            self._flush_windows(FLUSH_LIMIT)
        if coordinator.state != STOPPED:
            coordinator.transition(STOPPED, coordinator.stop_reason)
        self.close()
        log.info("daemon %s stopped (%s); metrics %s", self.instance_id[:8], coordinator.stop_reason, coordinator.snapshot())

    def _flush_windows(self, limit: float) -> None:
        """Give proxies a moment to collect answers already computed (bounded)."""
        host = self.services.get("mcp")
        deadline = time.monotonic() + limit
        while host is not None and host.pending_output() and time.monotonic() < deadline:
            time.sleep(0.01)  # proxies long-poll; their next poll empties the queue

    def close(self) -> None:
        """Release everything; the lifetime lock last."""
        if self.front_door is not None:
            self.front_door.stop()   # before the database closes under it; frees the port for the next daemon
        if self.server is not None:
            # Forced (stop --force, or the drain deadline passed): no grace for calls still
            # running; their clients learn the outcome is unknown.
            self.server.close(grace=0.0 if self.coordinator.forced else CLOSE_GRACE)
        self.abandoned = self.coordinator.inflight
        if self.abandoned:
            # Closing the database under a thread that is still using it crashes SQLite
            # (SIGSEGV). The process exits at once instead (see main); the kernel closes
            # the files and SQLite rolls the unfinished transactions back.
            log.warning("%d call(s) still running at a forced stop; abandoning them", self.abandoned)
        else:
            for closer in reversed(self._closers):
                try:
                    closer()
                except Exception:
                    log.exception("closing a shared object")
        if self.lifetime.held:
            # Only what is still ours: after the files were deleted a newer daemon may own
            # the record and key at these paths (the server unlinks only its own socket).
            lockmod.remove_record_if(self.paths.record, self.instance_id)
            if self._key_is_ours():
                try:
                    os.unlink(self.paths.key)
                except OSError:
                    pass
        self.lifetime.release()


def notify_ready(message: str) -> None:
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    try:
        os.write(int(fd), message.encode() + b"\n")
        os.close(int(fd))
    except (OSError, ValueError):
        pass


def daemonize() -> None:
    """Second fork: the spawner reaps the first process at once and the daemon is orphaned,
    so it never lingers as a zombie of a long-lived client (a proxy, a test, a REPL)."""
    if os.environ.pop(DAEMONIZE_ENV, None) != "1":
        return
    if os.fork() > 0:
        os._exit(0)


def main() -> int:
    daemonize()
    settings = load_settings()
    paths = paths_for(settings.home)
    ensure_layout(paths)
    configure_daemon(paths, settings["daemon.log_level"])
    daemon = Daemon(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, daemon._on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        if not daemon.start():
            notify_ready("busy")
            return 0
    except Exception as exc:
        log.exception("daemon failed to start")
        notify_ready(f"error {exc}")
        daemon.close()
        return 1
    notify_ready(f"ready {daemon.pid}")
    try:
        daemon.start_front_door()
    except Exception:
        log.exception("the A2A front door failed to start; the daemon serves on without it")
    try:
        daemon.loop()
    except Exception:
        log.exception("daemon main loop failed")
        daemon.coordinator.request_stop("internal error", force=True)
    daemon.shutdown()
    code = 1 if daemon.failed else 0
    if daemon.abandoned:
        # Abandoned calls still run in their threads; an orderly interpreter exit would
        # wait for them or pull the database from under them. Everything is released.
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
