"""Security and robustness of the daemon's socket: who may connect, what it accepts, and
what never kills it (wrong keys, silent or dripping connections, oversize messages,
garbage). Also the modes of every file, and homes that must be refused."""
from __future__ import annotations

import json
import os
import pathlib
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import connection as mpc

import pytest

from memesh.daemon import wire
from memesh.daemon.channel import Channel
from memesh.daemon.server import RESERVED_SLOTS
from memesh.errors import DaemonFull, MessageTooLarge
from tests.support import wait_until

TEN_MIB = 10 * 1024 * 1024


@pytest.fixture
def daemon(memesh_home):
    memesh_home.env["MEMESH_DAEMON_AUTH_TIMEOUT"] = "300"
    memesh_home.start_daemon()
    return memesh_home


def raw_connect(home) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    sock.connect(str(home.paths.socket))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the daemon sends until it closes the connection (socket timeout bounds it)."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def authenticated(home) -> mpc.Connection:
    """A bare stdlib connection that passed the handshake and entered the session."""
    conn = mpc.Client(str(home.paths.socket), family="AF_UNIX", authkey=home.paths.key.read_bytes())
    conn.send((None, "accept_connection", ("raw-test",), {}))
    assert conn.recv() == ("#RETURN", None)
    return conn


def still_serves(home) -> bool:
    channel = Channel.open(str(home.paths.socket), home.paths.key.read_bytes(), timeout=2.0)
    try:
        return channel.call("control", "ping", timeout=2.0) > 0
    finally:
        channel.close()


# --------------------------------------------------------------------------- authentication


def test_a_wrong_authkey_is_rejected_and_the_daemon_keeps_serving(daemon):
    with pytest.raises(mpc.AuthenticationError):
        Channel.open(str(daemon.paths.socket), b"w" * 32, timeout=2.0)
    assert still_serves(daemon)
    assert "rejected connection" in daemon.log_text()


def test_a_connection_that_never_authenticates_is_closed_after_the_deadline(daemon):
    started = time.monotonic()
    sock = raw_connect(daemon)
    with sock:
        challenge = read_until_closed(sock)
    elapsed = time.monotonic() - started
    assert challenge, "the daemon should have sent its challenge first"
    assert elapsed >= 0.25, f"an unauthenticated connection was cut after {elapsed:.2f}s, before its 0.3s deadline"
    assert still_serves(daemon)


def test_a_connection_that_drips_bytes_is_still_closed_at_the_authentication_deadline(daemon):
    """Each byte arrives well within the read timeout; the deadline is for the whole handshake."""
    sock = raw_connect(daemon)
    started = time.monotonic()
    closed = threading.Event()
    with sock:
        sock.recv(4096)  # the challenge
        header = struct.pack("!i", 200)  # announces a 200-byte answer, then sends it slowly
        for byte in header + b"x" * 200:
            try:
                sock.send(bytes([byte]))
            except OSError:
                closed.set()
                break
            ready = sock.recv(1) if _readable(sock, 0.1) else None
            if ready == b"":
                closed.set()
                break
            if time.monotonic() - started > 5:
                break
    elapsed = time.monotonic() - started
    assert closed.is_set(), f"a dripping connection lived {elapsed:.2f}s: the 0.3s handshake deadline never cut it"
    assert still_serves(daemon)


def _readable(sock: socket.socket, timeout: float) -> bool:
    import select

    return bool(select.select([sock], [], [], timeout)[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_connection_from_another_user_is_refused_even_if_the_socket_is_reachable(daemon):
    # Open the path up on purpose, so only the daemon's peer-uid check stands in the way.
    daemon.path.chmod(0o711)
    daemon.paths.socket.chmod(0o666)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setgid(65534)
            os.setuid(65534)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(3.0)
            sock.connect(str(daemon.paths.socket))
            data = sock.recv(4096)
            os.write(write_fd, b"closed" if data == b"" else b"challenged")
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            os.write(write_fd, f"error {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        _, status = os.waitpid(pid, 0)
        answer = os.read(read_fd, 200).decode()
    finally:
        os.close(read_fd)
    assert answer == "closed", f"a foreign uid got: {answer}"
    assert "refused connection from uid 65534" in daemon.log_text()
    assert still_serves(daemon)


# --------------------------------------------------------------------------- size limit


def test_a_message_over_ten_mib_is_refused_while_other_clients_keep_working(daemon):
    big = daemon.connect(name="big")
    other = daemon.connect(name="other")
    pings, stop = [], threading.Event()

    def ping_loop() -> None:
        while not stop.is_set():
            pings.append(other.control.ping())

    pinger = threading.Thread(target=ping_loop, daemon=True)
    pinger.start()
    try:
        with pytest.raises(MessageTooLarge, match="at most 10485760 bytes"):
            big.graph.search_nodes("x" * (TEN_MIB + 1))
        during = len(pings)
        wait_until(lambda: len(pings) > during + 10, 5, "the other client to keep getting answers")
    finally:
        stop.set()
        pinger.join(timeout=5)
    assert during > 0, "the other client got no answer while the oversize message was drained"
    # The same connection is still in step: the next call gets its own answer.
    assert big.graph.search_nodes("nothing-here")["entities"] == []
    assert big.control.ping() > 0
    assert "oversize message" in daemon.log_text()


# --------------------------------------------------------------------------- garbage


def test_random_bytes_before_authentication_never_kill_the_daemon(daemon):
    for payload in (os.urandom(4096), b"\x7f\xff\xff\xff" + os.urandom(64), b"\xff\xff\xff\xff" + b"\x00" * 8, b"GET / HTTP/1.1\r\n\r\n"):
        with raw_connect(daemon) as sock:
            sock.recv(4096)
            try:
                sock.sendall(payload)
                read_until_closed(sock)
            except OSError:
                pass  # the daemon may hang up while we are still sending
    assert still_serves(daemon)


def test_malformed_requests_after_authentication_get_errors_and_the_connection_stays_usable(daemon):
    conn = authenticated(daemon)
    with conn:
        for request in ("hello", (1, 2), ("control", 5, (), {}), ("control", "ping", [], {}),
                        ("nope", "ping", (), {}), (["control"], "ping", (), {}), ("control", ["ping"], (), {}),
                        ("control", "_daemon", (), {}), ("control", "#GETVALUE", (), {}), ("0", "shutdown", (), {})):
            conn.send(request)
            kind, _error = conn.recv()
            assert kind == "#ERROR", f"{request!r} was answered with {kind}"
        conn.send_bytes(b"\x80\x05not a pickle at all")
        kind, _error = conn.recv()
        assert kind == "#ERROR"
        conn.send(("control", "ping", (), {}))
        kind, value = conn.recv()
        assert kind == "#RETURN" and value > 0
    assert still_serves(daemon)


# --------------------------------------------------------------------------- files


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_files_and_socket_are_private(daemon):
    mesh = daemon.connect()
    mesh.graph.create_entities([{"name": "a", "entityType": "t", "observations": []}])
    paths = daemon.paths
    assert mode(paths.home) == 0o700
    assert mode(paths.log_dir) == 0o700
    assert stat.S_ISSOCK(os.lstat(paths.socket).st_mode) and mode(paths.socket) == 0o600
    private = [paths.record, paths.key, paths.log, paths.db, paths.start_lock, paths.lifetime_lock]
    private += [pathlib.Path(f"{paths.db}{suffix}") for suffix in ("-wal", "-shm") if os.path.exists(f"{paths.db}{suffix}")]
    assert {str(p): oct(mode(p)) for p in private} == {str(p): oct(0o600) for p in private}
    assert len(paths.key.read_bytes()) >= 32
    assert paths.key.read_bytes().hex() not in paths.record.read_text() + daemon.log_text()


def test_a_symlinked_home_is_refused_with_exit_77(make_home):
    target = make_home()
    link = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp")) / "h"
    link.symlink_to(target.path)
    try:
        done = target.cli("daemon", "start", env={"MEMESH_HOME": str(link)})
        assert done.returncode == 77, (done.returncode, done.stderr)
        assert "symlink" in done.stderr and str(link) in done.stderr
        assert not target.lifetime_held() and target.daemons() == []
    finally:
        link.unlink()
        link.parent.rmdir()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a directory owned by someone else")
def test_a_home_owned_by_another_user_is_refused_with_exit_77(memesh_home):
    os.chown(memesh_home.path, 65534, 65534)
    done = memesh_home.cli("daemon", "start")
    assert done.returncode == 77, (done.returncode, done.stderr)
    assert "owned by uid 65534" in done.stderr
    assert memesh_home.daemons() == []


# --------------------------------------------------------------------------- two homes


def test_daemons_of_two_homes_run_side_by_side_without_interfering(make_home):
    first, second = make_home(), make_home()
    pid_a, pid_b = first.start_daemon(), second.start_daemon()
    assert pid_a != pid_b
    a, b = first.connect(), second.connect()
    a.graph.create_entities([{"name": "only-in-a", "entityType": "t", "observations": []}])
    assert b.graph.open_nodes(["only-in-a"])["entities"] == []
    assert a.control.status()["home"] == str(first.path) and b.control.status()["home"] == str(second.path)
    assert first.cli("daemon", "stop").returncode == 0
    first.wait_daemon_gone()
    assert b.control.ping() > 0 and b.daemon_pid == pid_b
    assert second.record()["pid"] == pid_b and second.lifetime_held()
    assert [p.pid for p in second.daemons()] == [pid_b]


# --------------------------------------------------------------------------- connection cap


def test_a_full_daemon_refuses_new_clients_with_a_full_error_while_status_still_answers(memesh_home):
    memesh_home.env["MEMESH_DAEMON_MAX_CONNECTIONS"] = "3"
    memesh_home.env["MEMESH_DAEMON_AUTH_TIMEOUT"] = "60000"
    pid = memesh_home.start_daemon()
    meshes = [memesh_home.connect(name=f"window-{i}") for i in range(3)]
    wait_until(lambda: meshes[0].control.status()["connections"] == 3, 5, "three connections")
    # A client over the cap learns that the daemon is full, at once and in words.
    with pytest.raises(DaemonFull, match=r"is full: 3 connections open, daemon.max_connections is 3"):
        memesh_home.connect(name="window-3")
    # The CLI still reaches it (reserved slots), so status tells the truth.
    done = memesh_home.cli("daemon", "status", "--json")
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert json.loads(done.stdout)["pid"] == pid
    # Past the reserved slots too, a raw connection gets the full frame instead of a challenge.
    held = [raw_connect(memesh_home) for _ in range(RESERVED_SLOTS)]
    try:
        wait_until(lambda: meshes[0].control.status()["connections"] == 3 + RESERVED_SLOTS, 5, "the reserved slots taken")
        with raw_connect(memesh_home) as sock:
            assert wire.parse_full(read_until_closed(sock)) == (3 + RESERVED_SLOTS, 3)
    finally:
        for sock in held:
            sock.close()
    assert memesh_home.record()["pid"] == pid and memesh_home.verified_holder().pid == pid
    assert all(mesh.control.ping() for mesh in meshes)
    meshes[0].close()
    wait_until(lambda: meshes[1].control.status()["connections"] == 2, 5, "a free slot")
    assert memesh_home.connect(name="window-3").control.ping()
    assert "refusing connection" in memesh_home.log_text()


def test_a_window_that_finds_the_daemon_full_says_so_on_stderr(memesh_home):
    memesh_home.env["MEMESH_DAEMON_MAX_CONNECTIONS"] = "2"
    memesh_home.start_daemon()
    meshes = [memesh_home.connect(name=f"window-{i}") for i in range(2)]
    proc = memesh_home.popen([sys.executable, "-m", "memesh"], stdin=subprocess.PIPE)
    try:
        _out, err = proc.communicate(b"", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "is full" in err.decode() and "daemon.max_connections" in err.decode(), err
    assert all(mesh.control.ping() for mesh in meshes)


def test_a_huge_length_header_followed_by_silence_does_not_pin_a_thread(memesh_home):
    memesh_home.env["MEMESH_DAEMON_MESSAGE_TIMEOUT"] = "300"
    memesh_home.start_daemon()
    watcher = memesh_home.connect(name="watcher")
    oversize, partial = authenticated(memesh_home), authenticated(memesh_home)
    try:
        os.write(oversize.fileno(), struct.pack("!i", 2**31 - 1))  # 2 GiB announced, nothing follows
        os.write(partial.fileno(), struct.pack("!i", 1000) + b"x" * 10)  # under the cap, unfinished
        for conn in (oversize, partial):
            assert conn.poll(10.0), "the daemon never closed a connection that stopped mid-message"
            with pytest.raises(EOFError):
                conn.recv_bytes()
        wait_until(lambda: watcher.control.status()["connections"] == 1, 5, "both connections released")
    finally:
        oversize.close()
        partial.close()
    assert "did not finish it within" in memesh_home.log_text()
    assert still_serves(memesh_home)


def test_a_silent_connection_that_never_said_hello_gives_its_slot_up_after_the_idle_limit_when_slots_are_short(memesh_home):
    memesh_home.env["MEMESH_DAEMON_IDLE_CONNECTION_TIMEOUT"] = "500"
    memesh_home.env["MEMESH_DAEMON_MAX_CONNECTIONS"] = "3"
    memesh_home.start_daemon()
    quiet_client = memesh_home.connect(name="quiet-repl")  # said hello, no heartbeat: an idle REPL
    silent = authenticated(memesh_home)  # two of three slots taken: slots are short
    try:
        assert silent.poll(15.0), "an authenticated connection that never said anything was never closed"
        with pytest.raises(EOFError):
            silent.recv_bytes()
    finally:
        silent.close()
    assert "no hello and nothing sent" in memesh_home.log_text()
    # The client that said hello was just as quiet for as long, and keeps its session.
    assert quiet_client.control.ping() > 0
    assert quiet_client.session in {row["session"] for row in quiet_client.control.status()["clients"]}


LOW_SOFT_LIMIT = 256  # a common default soft limit for open files (macOS, some Linux logins)


def test_a_daemon_started_under_a_low_open_file_limit_raises_it_and_serves_more_clients_than_it_allowed(memesh_home):
    import resource

    import psutil

    from memesh.daemon.server import FD_HEADROOM, FDS_PER_CONNECTION

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * LOW_SOFT_LIMIT:
        pytest.skip(f"the hard open-file limit ({hard}) leaves nothing to raise")
    start = (f"import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({LOW_SOFT_LIMIT}, {hard})); "
             "os.execv(sys.executable, [sys.executable, '-m', 'memesh', 'daemon', 'start'])")
    done = subprocess.run([sys.executable, "-c", start], env=memesh_home.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    daemon = psutil.Process(memesh_home.record()["pid"])
    wanted = (4096 + RESERVED_SLOTS) * FDS_PER_CONNECTION + FD_HEADROOM
    assert daemon.rlimit(psutil.RLIMIT_NOFILE)[0] == (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard))
    # Each connection costs the daemon two descriptors: 200 clients need more than 256.
    meshes = [memesh_home.connect(name=f"client-{i}") for i in range(200)]
    assert all(mesh.control.ping() > 0 for mesh in meshes)
    assert meshes[0].control.status()["connections"] >= 200
    assert "out of file descriptors" not in memesh_home.log_text()
