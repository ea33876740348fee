"""Finding the daemon, and bringing one up when there is none (the client side of election).

``ensure_daemon`` follows the seed's start-up flow with the kernel locks of ``lock``:

1. fast path, no locks: the record names a socket, we connect and the daemon answers
   the hello → use it;
2. otherwise take the start lock, *try again* (another client may have just started
   it), gather the facts, and act on :func:`memesh.daemon.lock.judge`'s verdict:
   STALE → spawn a daemon; STARTING → wait (bounded); HUNG → kill the verified holder,
   then spawn; UNKNOWN → refuse with a clear error.

Race losers end up clients of the winner: nobody falls back to running its own copy.
The daemon is spawned fully detached (double fork, new session, stdio to /dev/null and
the log) and pushes one line on an inherited pipe when it is ready.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from multiprocessing import connection as mpc

from memesh.backoff import backoff_delay
from memesh.config import SOURCE_DEFAULT, Settings, env_name
from memesh._version import __version__
from memesh.daemon import lock as lockmod
from memesh.daemon.channel import Channel, HelloTimeout
from memesh import lazylog
from memesh.errors import DaemonDraining, DaemonStartError, DaemonUnreachable, VersionMismatch
from memesh.paths import Paths, ensure_layout, open_private

log = lazylog.get(__name__)  # the proxy's start-up path: see memesh.lazylog

READY_FD_ENV = "MEMESH_READY_FD"
DAEMONIZE_ENV = "MEMESH_DAEMONIZE"
LOG_TAIL_LINES = 20
KILL_WAIT = 5.0  # seconds for the kernel to release a killed daemon's lifetime lock
DEAF_PATIENCE = 0.5  # seconds before the start deadline at which a daemon that does not listen is reported
TERM_GRACE = 3.0  # seconds a hung daemon has to exit after SIGTERM before SIGKILL
HUNG_AFTER = 2  # health deadlines a contender waits, with no reply of any kind, before judging a daemon hung
SPAWN_BACKOFF_BASE = 1.0  # seconds before a new start after one failed start of this home
SPAWN_BACKOFF_CAP = 30.0  # …doubling per failure up to this


def log_tail(paths: Paths, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(paths.log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no daemon log yet)"
    return "\n".join(text.splitlines()[-lines:])


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives a spawned daemon this process's settings.

    The daemon builds its settings again from its environment and files; every value
    that is not a default (from a file, a variable or a flag, or from a mapping given to
    ``load_settings``) is passed as its ``MEMESH_*`` variable so none is lost.
    """
    env = {}
    for key, value in settings.values.items():
        if settings.sources[key] != SOURCE_DEFAULT:
            env[env_name(key)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return env


def socket_candidates(paths: Paths) -> list[str]:
    record, _ = lockmod.read_record(paths.record)
    candidates = [str(paths.socket)]
    if record is not None and record.socketPath not in candidates:
        candidates.insert(0, record.socketPath)
    return candidates


_OUTCOME_RANK = {lockmod.HELLO_REFUSED: 0, lockmod.HELLO_TIMEOUT: 1, lockmod.HELLO_REJECTED: 2, lockmod.HELLO_SLOW: 3}


def _stronger(a: str, b: str) -> str:
    """Of two hello outcomes, the one that says more about the daemon being alive."""
    return a if _OUTCOME_RANK[a] >= _OUTCOME_RANK[b] else b


def try_hello(paths: Paths, settings: Settings, info: dict, name: str) -> tuple[Channel | None, dict | None, str]:
    """One attempt: connect, authenticate, say hello. Returns (channel, hello, outcome)."""
    timeout = settings.seconds("daemon.health_timeout")
    try:
        key = paths.key.read_bytes()
    except OSError:
        return None, None, lockmod.HELLO_REFUSED
    outcome = lockmod.HELLO_REFUSED
    for path in socket_candidates(paths):
        try:
            channel = Channel.open(path, key, timeout, name=name)
        except HelloTimeout:
            outcome = _stronger(outcome, lockmod.HELLO_TIMEOUT)
            continue
        except (EOFError, ConnectionResetError, BrokenPipeError, mpc.AuthenticationError) as exc:
            # Someone listening closed the handshake (a daemon at its connection cap) or
            # failed it (the key changed under us): alive and answering, not hung.
            log.debug("hello at %s rejected: %r", path, exc)
            outcome = _stronger(outcome, lockmod.HELLO_REJECTED)
            continue
        except (OSError, ValueError) as exc:  # no socket, connection refused
            log.debug("hello at %s failed: %r", path, exc)
            continue
        try:
            hello = channel.call("control", "hello", (info,), timeout=timeout)
        except Exception as exc:
            channel.close()
            # The handshake completed, so the daemon is alive: a slow hello is "slow", any
            # other failure a reply of sorts. A kernel receive timeout surfaces as EAGAIN
            # (BlockingIOError) under ChannelBroken.
            slow = isinstance(exc.__cause__, (BlockingIOError, TimeoutError))
            log.debug("hello at %s after the handshake failed: %r", path, exc)
            outcome = _stronger(outcome, lockmod.HELLO_SLOW if slow else lockmod.HELLO_REJECTED)
            continue
        return channel, hello, lockmod.HELLO_OK
    return None, None, outcome


def gather_facts(paths: Paths, hello: str, overdue: bool, *, answered: bool = False, timeouts: int = 0) -> tuple[lockmod.Facts, dict]:
    held = lockmod.lifetime_held(paths.lifetime_lock)
    holder = lockmod.read_holder(paths.lifetime_lock) if held else {}
    alive = verified = False
    pid = holder.get("pid")
    if isinstance(pid, int) and pid > 0:
        try:
            import psutil

            proc = psutil.Process(pid)
            alive = proc.status() != psutil.STATUS_ZOMBIE
            created = holder.get("createTime")
            verified = alive and isinstance(created, (int, float)) and lockmod.create_times_match(float(created), proc.create_time())
        except Exception:
            alive = verified = False
    facts = lockmod.Facts(lifetime_held=held, holder_alive=alive, holder_verified=verified, hello=hello, overdue=overdue,
                          answered=answered, timeouts=timeouts)
    return facts, holder


def wait_lifetime_free(paths: Paths, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    attempt = 0
    while lockmod.lifetime_held(paths.lifetime_lock):
        if time.monotonic() >= deadline:
            return False
        time.sleep(backoff_delay(attempt, base=0.005, cap=0.1, rand=0.0))
        attempt += 1
    return True


def kill_hung(paths: Paths, holder: dict) -> None:
    """Terminate the verified holder: SIGTERM, then SIGKILL after a grace (at once if it is
    stopped, since a stopped process only acts on SIGTERM once continued)."""
    import psutil

    pid = holder["pid"]
    try:
        proc = psutil.Process(pid)
        created = holder.get("createTime")
        if not (isinstance(created, (int, float)) and lockmod.create_times_match(float(created), proc.create_time())):
            raise DaemonUnreachable(f"pid {pid} is no longer the daemon that holds {paths.lifetime_lock}; not killing it")
        stopped = proc.status() == psutil.STATUS_STOPPED
        if stopped:
            log.warning("daemon pid %s holds the lock but is stopped and does not answer; terminating it (SIGKILL)", pid)
        else:
            log.warning("daemon pid %s holds the lock but has not answered at all; terminating it (SIGTERM, then SIGKILL "
                        "after %.0fs)", pid, TERM_GRACE)
            proc.terminate()  # psutil checks the pid was not reused before signalling
            if wait_lifetime_free(paths, TERM_GRACE):
                return
            log.warning("daemon pid %s did not exit within %.0fs of SIGTERM; killing it", pid, TERM_GRACE)
        proc.kill()
    except psutil.NoSuchProcess:
        pass
    if not wait_lifetime_free(paths, KILL_WAIT):
        raise DaemonUnreachable(f"killed hung daemon pid {pid} but its lock {paths.lifetime_lock} was not released")


def spawn_daemon(settings: Settings, paths: Paths) -> str:
    """Start a detached daemon and wait for its first line: 'ready <pid>', 'busy' or an error."""
    ensure_layout(paths)
    read_fd, write_fd = os.pipe()
    env = dict(os.environ)
    env.update(settings_environment(settings))
    env[READY_FD_ENV] = str(write_fd)
    env[DAEMONIZE_ENV] = "1"
    env["MEMESH_HOME"] = str(paths.home)
    log_fd = open_private(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "memesh.daemon.process"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_fd,
            pass_fds=(write_fd,),
            start_new_session=True,
            close_fds=True,
            cwd="/",
            env=env,
        )
    finally:
        os.close(write_fd)
        os.close(log_fd)
    timeout = settings.seconds("daemon.ready_timeout")
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable, _, _ = select.select([read_fd], [], [], left)
            if not readable:
                break
            chunk = os.read(read_fd, 256)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_fd)
        # The first process forks the real daemon and exits at once; reap it.
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    line = data.decode("utf-8", "replace").strip()
    if line.startswith("ready") or line == "busy":
        return line
    what = f"said {line!r}" if line else f"did not report ready within {timeout:.1f}s"
    raise DaemonStartError(f"the memesh daemon {what}. Last lines of {paths.log}:\n{log_tail(paths)}")


def wait_for_handover(paths: Paths, settings: Settings) -> None:
    """A draining daemon is on its way out: wait (bounded) until it has released its lock."""
    limit = settings.seconds("daemon.drain_timeout") + settings.seconds("daemon.health_timeout")
    if not wait_lifetime_free(paths, limit):
        raise DaemonUnreachable(f"the daemon has been draining for over {limit:.0f}s; try `memesh daemon stop --force`")


def ensure_daemon(settings: Settings, paths: Paths, info: dict, *, start: bool = True, name: str = "memesh") -> tuple[Channel, dict]:
    """A channel to a live daemon (started if needed and allowed), plus its hello."""
    channel, hello, outcome = try_hello(paths, settings, info, name)
    if channel is not None and hello.get("state") != "draining":
        return channel, hello
    if channel is not None:
        channel.close()
        wait_for_handover(paths, settings)
    if not start:
        raise DaemonUnreachable("the daemon does not answer") if outcome == lockmod.HELLO_TIMEOUT else _not_running(paths)
    ensure_layout(paths)
    yielded_until = time.monotonic() + handover_max_age(settings)
    attempt = 0
    while True:
        try:
            return _elect(settings, paths, info, name)
        except _NewerOnItsWay as newer:
            # A newer installation asked for this handover: its daemon, not one of ours,
            # comes next. Wait outside the start lock (it needs it) and use its daemon.
            if time.monotonic() > yielded_until:
                raise DaemonStartError(f"memesh {newer.version} (pid {newer.pid}) asked to take over the daemon but has not "
                                       f"started one in {handover_max_age(settings):.0f}s") from None
            if attempt == 0:
                log.info("memesh %s (pid %s) is taking over the daemon; waiting for it", newer.version, newer.pid)
            time.sleep(backoff_delay(attempt, base=0.02, cap=0.25, rand=0.0))
            attempt += 1
            channel, hello, _ = try_hello(paths, settings, info, name)
            if channel is not None:
                if hello.get("state") != "draining":
                    return channel, hello
                channel.close()


def handover_max_age(settings: Settings) -> float:
    """How long a handover marker holds back older contenders: the asker's drain wait, plus a start."""
    return settings.seconds("daemon.drain_timeout") + 2 * settings.seconds("daemon.health_timeout") + settings.seconds("daemon.ready_timeout") + 5.0


class _NewerOnItsWay(Exception):
    def __init__(self, marker: dict):
        super().__init__(marker)
        self.version = marker.get("version")
        self.pid = marker.get("pid")


def _elect(settings: Settings, paths: Paths, info: dict, name: str) -> tuple[Channel, dict]:
    """Under the start lock: find, wait for, replace or start the daemon (see the module docs)."""
    import filelock  # imported here: ~60 ms that the fast path never pays

    health = settings.seconds("daemon.health_timeout")
    budget = settings.seconds("daemon.ready_timeout") + (HUNG_AFTER + 2) * health + TERM_GRACE + KILL_WAIT
    deadline = time.monotonic() + budget
    try:
        with filelock.FileLock(str(paths.start_lock), timeout=budget, mode=0o600):
            waiting_since = time.monotonic()
            attempt = 0
            answered = False  # any reply at all during this wait proves the daemon alive
            timeouts = 0  # hellos in a row that timed out without a byte of answer
            while True:
                channel, hello, outcome = try_hello(paths, settings, info, name)
                if channel is not None:
                    if hello.get("state") == "draining":
                        channel.close()
                        wait_for_handover(paths, settings)
                        continue
                    return channel, hello
                answered = answered or outcome in lockmod.REPLIED
                timeouts = timeouts + 1 if outcome == lockmod.HELLO_TIMEOUT else 0
                overdue = time.monotonic() - waiting_since > HUNG_AFTER * health
                facts, holder = gather_facts(paths, outcome, overdue, answered=answered, timeouts=timeouts)
                verdict = lockmod.judge(facts)
                log.debug("lock judgement %s from %s", verdict, facts)
                if verdict == lockmod.STALE:
                    from memesh.daemon import handover  # only on the way to a start, never on the fast path

                    pending, marker = handover.check(paths, __version__, handover_max_age(settings))
                    if pending == handover.WAIT:
                        raise _NewerOnItsWay(marker)
                    _spawn_with_backoff(settings, paths)
                    answered, timeouts, waiting_since = False, 0, time.monotonic()
                elif verdict == lockmod.HUNG:
                    kill_hung(paths, holder)
                elif verdict == lockmod.BUSY:
                    raise DaemonUnreachable(
                        f"the daemon (pid {holder.get('pid', '?')}) is running but does not serve new connections in time; it "
                        f"may be at daemon.max_connections ({settings['daemon.max_connections']}) or very busy. Close some "
                        "clients or raise the limit; `memesh daemon status` shows what it is doing"
                    )
                elif verdict == lockmod.DEAF and time.monotonic() + DEAF_PATIENCE > deadline:
                    # Until then it is waited for like a starting daemon: one whose socket
                    # or key went away repairs the key or drains and exits by itself.
                    raise DaemonUnreachable(
                        f"the daemon (pid {holder.get('pid', '?')}) is running but nothing answers at {paths.socket} (its "
                        f"socket or key is missing) and it has not recovered within {budget:.0f}s; stop it with "
                        "`memesh daemon stop --force`"
                    )
                elif verdict == lockmod.UNKNOWN:
                    raise DaemonUnreachable(
                        f"a process holds {paths.lifetime_lock} but does not answer and cannot be verified as a memesh daemon "
                        f"(holder {holder or 'unknown'}); check it with `memesh daemon status` and stop it by hand"
                    )
                else:  # STARTING, or DEAF with time left
                    time.sleep(backoff_delay(attempt, base=0.01, cap=0.2, rand=0.0))
                    attempt += 1
                if time.monotonic() > deadline:
                    raise DaemonStartError(f"no daemon became available within {budget:.0f}s. Last lines of {paths.log}:\n{log_tail(paths)}")
    except filelock.Timeout:
        raise DaemonStartError(f"another process has held {paths.start_lock} for over {budget:.0f}s while starting a daemon") from None


# Failed starts per home in this process: (failures in a row, monotonic time before which
# no new start is tried). A home whose daemon cannot start (read-only, disk full) must not
# make a window spawn a failing daemon in a tight loop.
_spawn_failures: dict[str, tuple[int, float]] = {}


def spawn_backoff_left(paths: Paths, now: float | None = None) -> float:
    """Seconds until this process may try to start a daemon for this home again (0: now)."""
    failures, not_before = _spawn_failures.get(str(paths.home), (0, 0.0))
    return max(0.0, not_before - (time.monotonic() if now is None else now))


def _spawn_with_backoff(settings: Settings, paths: Paths) -> str:
    key = str(paths.home)
    failures, _ = _spawn_failures.get(key, (0, 0.0))
    left = spawn_backoff_left(paths)
    if left > 0:
        raise DaemonStartError(
            f"the last {failures} attempt(s) to start the memesh daemon failed; not trying again for {left:.1f}s. "
            f"Last lines of {paths.log}:\n{log_tail(paths)}"
        )
    try:
        line = spawn_daemon(settings, paths)
    except (DaemonStartError, OSError):
        delay = backoff_delay(failures, base=SPAWN_BACKOFF_BASE, cap=SPAWN_BACKOFF_CAP, rand=0.0)
        _spawn_failures[key] = (failures + 1, time.monotonic() + delay)
        log.warning("starting the daemon failed (%d in a row); the next start waits %.0fs", failures + 1, delay)
        raise
    _spawn_failures.pop(key, None)
    log.debug("spawned daemon: %s", line)
    return line


def _not_running(paths: Paths) -> Exception:
    from memesh.errors import DaemonNotRunning

    return DaemonNotRunning(f"no memesh daemon is running for {paths.home}; start one with `memesh daemon start`")


def version_action(info: dict, hello: dict, auto_upgrade: bool) -> tuple[str, str]:
    """("use" | "upgrade" | "refuse", message) for talking to the daemon that said ``hello``.

    Same version and protocol — the common case — is decided here without loading the
    version machinery (the proxy's start-up path); anything else goes to ``version.decide``.
    """
    if hello.get("protocol") == info.get("protocol") and hello.get("version") == info.get("version"):
        return "use", ""
    from memesh.version import PeerVersion, decide

    daemon = PeerVersion(
        version=str(hello.get("version", "")),
        protocol=hello.get("protocol", -1),
        build=str(hello.get("build", "")),
        min_client_version=str(hello.get("minClientVersion", "")),
    )
    client = PeerVersion(str(info.get("version", "")), info.get("protocol", -1), str(info.get("build", "")))
    decision = decide(client, daemon, auto_upgrade=auto_upgrade)
    return decision.action, f"{decision.reason} {decision.advice}".strip()


def connect_compatible(settings: Settings, paths: Paths, info: dict, *, start: bool = True, name: str = "memesh") -> tuple[Channel, dict]:
    """Like :func:`ensure_daemon`, and never talks to an incompatible daemon blindly.

    An older, protocol-compatible daemon is asked to hand over (``daemon.auto_upgrade``)
    and its successor is used; an incompatible one is refused with the command to run.
    """
    from memesh.daemon.channel import ChannelBroken

    for _ in range(2):
        channel, hello = ensure_daemon(settings, paths, info, start=start, name=name)
        action, message = version_action(info, hello, settings["daemon.auto_upgrade"])
        if action == "refuse":
            channel.close()
            raise VersionMismatch(message)
        if action == "upgrade":
            log.warning("asking daemon pid %s to hand over: %s", hello.get("pid"), message)
            try:
                channel.call("control", "request_upgrade", (info,))
            except ChannelBroken:
                pass  # it left before answering; the handover wait below checks
            channel.close()
            wait_for_handover(paths, settings)
            continue
        return channel, hello
    raise VersionMismatch("the daemon did not hand over after an upgrade request; run `memesh daemon upgrade`")


__all__ = ["ensure_daemon", "connect_compatible", "version_action", "spawn_daemon", "try_hello", "gather_facts", "DaemonDraining"]
