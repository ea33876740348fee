"""``memesh daemon start | status | logs | stop | restart | upgrade | run``.

Each command builds the settings once, talks to the daemon through the library, prints
for a person (or JSON with ``--json``) and leaves by ``SystemExit`` with a documented code.
"""
from __future__ import annotations

import json
import os
import stat
import sys
import time

import argh

from memesh import identity
from memesh.cli.errors import AlreadyRunning, UsageError, describe_os_error
from memesh.cli.render import format_status, status_document
from memesh.config import load_settings
from memesh.daemon import lock as lockmod
from memesh.errors import DaemonDisabled, DaemonUnreachable, UnsafePathError, VersionMismatch
from memesh.paths import paths_for

EXIT_RUNNING = 0
EXIT_NOT_RUNNING = 3
EXIT_STALE = 4
STOP_MARGIN = 5.0  # seconds beyond the drain timeout that `stop` waits for the exit


def check_home(home) -> None:
    """Refuse, in one line, a MEMESH_HOME that is a file or that we cannot read (a missing one is fine)."""
    try:
        st = os.stat(home)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UnsafePathError(f"cannot use MEMESH_HOME {home}: {describe_os_error(exc)}; point MEMESH_HOME at a directory of your own") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"MEMESH_HOME {home} is not a directory; move the file away or point MEMESH_HOME at a directory")
    if not os.access(home, os.R_OK | os.X_OK):
        raise UnsafePathError(f"MEMESH_HOME {home} is not readable by you; fix its permissions (chmod 700) or use another home")


def _settings():
    settings = load_settings()
    check_home(settings.home)
    return settings


def _cli_info(settings, *, probe: bool = False) -> dict:
    """The CLI's hello; ``probe`` marks a status query, which is not activity for the idle clock."""
    info = {**identity.identity(), "session": f"cli-{os.getpid()}", "name": "memesh-cli", "kind": "cli", "pid": os.getpid(), "cwd": os.getcwd()}
    if probe:
        info["probe"] = True
    return info


def _attach(settings, *, start: bool):
    """(channel, hello) to the daemon; starts one only when ``start``."""
    from memesh.daemon.spawn import ensure_daemon

    paths = paths_for(settings.home)
    return ensure_daemon(settings, paths, _cli_info(settings), start=start, name="memesh-cli")


def probe(settings) -> tuple[int, dict]:
    """What ``status`` reports, without ever starting a daemon: (exit code, status dict)."""
    paths = paths_for(settings.home)
    if not settings.daemon_enabled:
        from memesh.daemon.client import StandaloneControl

        return EXIT_NOT_RUNNING, StandaloneControl(settings).status()
    from memesh.daemon.spawn import try_hello

    channel, _hello, outcome = try_hello(paths, settings, _cli_info(settings, probe=True), "memesh-cli")
    if channel is not None:
        try:
            return EXIT_RUNNING, channel.call("control", "status", timeout=settings.seconds("daemon.health_timeout"))
        finally:
            channel.close()
    record, present = lockmod.read_record(paths.record)
    held = lockmod.lifetime_held(paths.lifetime_lock)
    base = {"home": str(paths.home), "socketPath": str(paths.socket), "lockPath": str(paths.record), "logPath": str(paths.log)}
    if held:
        holder = lockmod.read_holder(paths.lifetime_lock)
        reason = ("a daemon holds the lifetime lock but turns connections away (daemon.max_connections?)"
                  if outcome == lockmod.HELLO_REJECTED else "a daemon holds the lifetime lock but does not answer")
        return EXIT_STALE, {**base, "mode": "unreachable", "pid": holder.get("pid"), "hello": outcome, "reason": reason}
    if present:
        return EXIT_STALE, {**base, "mode": "stale", "pid": record.pid if record else None,
                            "reason": "a lock record was left by a daemon that is no longer running; the next start replaces it"}
    return EXIT_NOT_RUNNING, {**base, "mode": "not running"}


@argh.arg("--json", dest="as_json", help="print the status as JSON")
def status(*, as_json: bool = False) -> None:
    """Show whether the daemon runs, its pid, versions, clients, paths and in-flight work."""
    settings = _settings()
    code, info = probe(settings)
    info = status_document(info)
    if as_json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(format_status(info))
    raise SystemExit(code)


def start() -> None:
    """Start the daemon if it is not running (prints its pid either way)."""
    settings = load_settings()
    if not settings.daemon_enabled:
        raise DaemonDisabled(f"daemon mode is disabled ({settings.sources['daemon.enabled']}); memesh runs standalone, nothing to start")
    channel, hello = _attach(settings, start=True)
    channel.close()
    print(f"memesh daemon running: pid {hello['pid']} (version {hello.get('version')}, socket {paths_for(settings.home).socket})")


def _process_of(hello: dict):
    """The psutil handle of the daemon that said ``hello`` (None if it is already gone)."""
    import psutil

    try:
        return psutil.Process(int(hello["pid"]))
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None


def _poll(predicate, timeout: float) -> bool:
    """Check ``predicate`` with a short backoff until it holds (True) or ``timeout`` s pass."""
    from memesh.backoff import backoff_delay

    deadline = time.monotonic() + timeout
    attempt = 0
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(backoff_delay(attempt, base=0.005, cap=0.05, rand=0.0))
        attempt += 1
    return True


def _wait_gone(settings, proc, timeout: float) -> bool:
    """Wait until the daemon process has exited and no longer holds the lifetime lock.

    The process itself is watched, not only the lock: if someone deleted the lifetime
    lock file, the lock looks free while the daemon still runs (and still owns its files).
    Once it is gone, a window that lost it may already have started its successor, which
    then holds the lock: that is not the old daemon.
    """
    import psutil

    lifetime = paths_for(settings.home).lifetime_lock
    old_pid = proc.pid if proc is not None else None

    def gone() -> bool:
        try:  # a zombie waiting for init to reap it is gone; is_running() is False for a reused pid
            if proc is not None and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.Error:
            pass
        return not lockmod.lifetime_held(lifetime) or (old_pid is not None and lockmod.read_holder(lifetime).get("pid") != old_pid)

    return _poll(gone, timeout)


def _force_kill(settings) -> int | None:
    """Kill a daemon that does not answer, after verifying it is the recorded process."""
    from memesh.daemon.spawn import gather_facts, kill_hung

    paths = paths_for(settings.home)
    facts, holder = gather_facts(paths, lockmod.HELLO_TIMEOUT, overdue=True)
    if not facts.lifetime_held:
        return None
    if not (facts.holder_alive and facts.holder_verified):
        raise DaemonUnreachable(f"the lifetime lock is held by an unverifiable process ({holder or 'unknown'}); not killing it")
    kill_hung(paths, holder)
    return holder["pid"]


def _cleanup_after_kill(settings, instance_id: str | None = None) -> None:
    """After a daemon died without cleaning up, remove its record, socket and key.

    Only while no daemon holds the lifetime lock, and — when we know which daemon we
    stopped — only if the record still names it: otherwise the files may already belong
    to its successor (whose start-up clears leftovers anyway).
    """
    import stat as statmod

    paths = paths_for(settings.home)
    if lockmod.lifetime_held(paths.lifetime_lock):
        return
    record, present = lockmod.read_record(paths.record)
    if instance_id is not None and present and (record is None or record.instanceId != instance_id):
        return
    lockmod.remove_record_if(paths.record, instance_id)
    for path in (paths.socket, paths.key):
        try:
            if path != paths.socket or statmod.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except OSError:
            pass


def stop_daemon(settings, *, force: bool) -> int | None:
    """Stop the daemon; returns the pid that was stopped (None if none was running)."""
    from memesh.daemon.channel import ChannelBroken
    from memesh.daemon.spawn import try_hello

    paths = paths_for(settings.home)
    channel, hello, _ = try_hello(paths, settings, _cli_info(settings), "memesh-cli")
    if channel is None:
        if force:
            pid = _force_kill(settings)
            _cleanup_after_kill(settings)
            return pid
        if lockmod.lifetime_held(paths.lifetime_lock):
            raise DaemonUnreachable("the daemon does not answer; use `memesh daemon stop --force`")
        _cleanup_after_kill(settings)
        return None
    pid = hello["pid"]
    proc = _process_of(hello)
    try:
        channel.call("control", "stop", (force,), timeout=settings.seconds("daemon.health_timeout"))
    except ChannelBroken:
        pass  # it went away before answering, which is what we asked for; the wait below checks
    finally:
        channel.close()
    limit = (0 if force else settings.seconds("daemon.drain_timeout")) + STOP_MARGIN
    if not _wait_gone(settings, proc, limit):
        if not force:
            raise DaemonUnreachable(f"daemon pid {pid} did not exit within {limit:.0f}s; use `memesh daemon stop --force`")
        _force_kill(settings)
    _cleanup_after_kill(settings, hello.get("instanceId"))
    return pid


@argh.arg("--force", help="stop at once, without waiting for in-flight calls")
def stop(*, force: bool = False) -> None:
    """Stop the daemon: finish in-flight calls first (or not, with --force)."""
    settings = _settings()
    pid = stop_daemon(settings, force=force)
    print("no memesh daemon was running" if pid is None else f"stopped memesh daemon pid {pid}")


def restart() -> None:
    """Drain the running daemon and start a new one; connected windows move over by themselves."""
    settings = load_settings()
    if not settings.daemon_enabled:
        raise DaemonDisabled("daemon mode is disabled; nothing to restart")
    old = stop_daemon(settings, force=False)
    channel, hello = _attach(settings, start=True)
    channel.close()
    print(f"memesh daemon restarted: pid {old} -> {hello['pid']}" if old else f"memesh daemon started: pid {hello['pid']}")


def upgrade() -> None:
    """Hand the running daemon over to the memesh installed here (drain, release, take over).

    Fails (exit 5) when the daemon that runs afterwards is not this installation's
    version, and refuses to replace a daemon newer than this installation.
    """
    settings = load_settings()
    if not settings.daemon_enabled:
        raise DaemonDisabled("daemon mode is disabled; nothing to upgrade")
    from memesh.daemon.channel import ChannelBroken
    from memesh.daemon.spawn import try_hello, wait_for_handover
    from memesh.version import parse_version

    paths = paths_for(settings.home)
    info = _cli_info(settings)
    mine = identity.__version__
    channel, hello, _ = try_hello(paths, settings, info, "memesh-cli")
    before = None
    if channel is not None:
        before = hello
        running = parse_version(hello.get("version"))
        if running.valid and parse_version(mine).valid and running > parse_version(mine):
            channel.close()
            raise VersionMismatch(
                f"the running daemon (pid {hello.get('pid')}) is memesh {running}, newer than this installation's {mine} "
                f"({sys.executable}); nothing to upgrade. Run `memesh daemon upgrade` from the newest installation"
            )
        try:
            channel.call("control", "request_upgrade", (info,), timeout=settings.seconds("daemon.health_timeout"))
        except ChannelBroken:
            pass  # it left before answering; wait_for_handover checks that it is gone
        finally:
            channel.close()
        wait_for_handover(paths, settings)
    channel, after = _attach(settings, start=True)
    channel.close()
    new = f"pid {after['pid']} (version {after.get('version')}, build {after.get('build')})"
    if str(after.get("version")) != mine:
        raise VersionMismatch(
            f"the daemon did not upgrade: {new} runs, not memesh {mine} from this installation ({sys.executable}). "
            "Another installation started it first; run `memesh daemon upgrade` again from this one"
        )
    if before is None:
        print(f"no daemon was running; started {new}")
    else:
        print(f"memesh daemon upgraded: pid {before['pid']} (version {before.get('version')}, build {before.get('build')}) -> {new}")


@argh.arg("-n", "--lines", help="how many lines to show")
@argh.arg("-f", "--follow", help="keep printing new lines as they are written")
def logs(*, lines: int = 50, follow: bool = False) -> None:
    """Show the daemon log (the last N lines; -f to follow it)."""
    from memesh.cli.logview import follow_log, tail_lines

    if lines < 0:
        raise UsageError(f"daemon logs: -n/--lines must be 0 or more, got {lines}")
    settings = _settings()
    path = paths_for(settings.home).log
    for line in tail_lines(path, lines):
        sys.stdout.write(line)
    sys.stdout.flush()
    if follow:
        try:
            follow_log(path, sys.stdout)
        except KeyboardInterrupt:
            pass


def run() -> None:
    """Run the daemon in the foreground (for service managers and debugging)."""
    from memesh.daemon.process import main as daemon_main

    settings = _settings()
    paths = paths_for(settings.home)
    if lockmod.lifetime_held(paths.lifetime_lock):
        pid = lockmod.read_holder(paths.lifetime_lock).get("pid", "?")
        raise AlreadyRunning(f"a memesh daemon (pid {pid}) already serves {paths.home}; stop it first with `memesh daemon stop`")
    os.environ.pop("MEMESH_DAEMONIZE", None)
    raise SystemExit(daemon_main())


COMMANDS = [start, status, logs, stop, restart, upgrade, run]
