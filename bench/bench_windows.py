"""Many windows on one daemon: N concurrent sessions, then window N+1, measured.

Starts a daemon in a temporary MEMESH_HOME, then opens N MCP sessions on it:

* ``--real`` of them as real ``memesh`` proxy processes (stdio, ``initialize`` answered),
  as many as this machine's memory allows;
* the rest through load-worker processes that open sessions with the proxy's own
  connector (``memesh.mcp.proxy.daemon_connector``: the same connections, hello and
  heartbeat promise as a window), send ``initialize``, and keep long-polling each session
  as a window's poller does.

Then a real proxy process for window N+1 is timed from exec to its ``initialize``
answer, and pinged through its stdio (p50/p99). Prints those figures, the daemon's RSS,
threads and connections, and whether any window went standalone. Every process started
here is stopped by its pid (process group), the daemon by its verified pid.

Run: ``python bench/bench_windows.py [--windows 1000] [--real 200]``.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import select
import signal
import statistics
import subprocess
import sys
import time

import psutil

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_daemon import Home as DaemonHome  # noqa: E402  (same folder)

TARGETS = {"init": "<= 100 ms", "ping_p50": "<= 1 ms", "rss": "<= 150 MB"}
INITIALIZE = json.dumps({
    "jsonrpc": "2.0", "id": 0, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
})
INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})

# A load worker: opens sessions over the proxy's connector, keeps them polling, reports.
WORKER = r"""
import json, os, sys, threading
from memesh.config import load_settings
from memesh.mcp.proxy import daemon_connector, POLL_TIMEOUT
count = int(sys.argv[1])
POLL_TIMEOUT = float(sys.argv[4]) if len(sys.argv) > 4 and float(sys.argv[4]) > 0 else POLL_TIMEOUT
settings = load_settings()
stop = threading.Event()
def poll(channel, sid):
    while not stop.is_set():
        try:
            channel.call("mcp", "poll", (sid, POLL_TIMEOUT), timeout=POLL_TIMEOUT + 10.0)
        except Exception as exc:
            print("lost", repr(exc), file=sys.stderr, flush=True)
            return
threading.stack_size(256 * 1024)
opened = 0
kept = []  # a channel that is garbage collected closes its connection
for i in range(count):
    context = {"cwd": os.getcwd(), "pid": os.getpid()}
    submit_ch, poll_ch, sid, _info = daemon_connector(settings, context)()
    submit_ch.call("mcp", "submit", (sid, sys.argv[2]), timeout=30.0)
    submit_ch.call("mcp", "submit", (sid, sys.argv[3]), timeout=30.0)
    threading.Thread(target=poll, args=(poll_ch, sid), daemon=True).start()
    kept.append((submit_ch, poll_ch))
    opened += 1
print("ready", opened, flush=True)
sys.stdin.readline()
stop.set()
"""


class Home(DaemonHome):
    """bench_daemon's temporary home, plus the window processes started in it."""

    def __init__(self) -> None:
        super().__init__()
        self.env["PYTHONPATH"] = str(ROOT)
        self.children: list[subprocess.Popen] = []

    def popen(self, argv: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, env=env or self.env, start_new_session=True, cwd=str(ROOT), **kwargs)
        self.children.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self.children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.remove()


def read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    """One stdout line of ``proc`` within ``timeout`` seconds (b"" on timeout or EOF)."""
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return data
        chunk = os.read(fd, 1)
        if not chunk:
            return data
        data += chunk
    return data


def start_window(home: Home) -> tuple[subprocess.Popen, float]:
    """A real proxy process; returns it and the ms from exec to its initialize answer."""
    started = time.perf_counter()
    proc = home.popen([sys.executable, "-m", "memesh"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    proc.stdin.write(INITIALIZE.encode() + b"\n")
    line = read_line(proc, 60.0)
    elapsed = (time.perf_counter() - started) * 1000
    if not line or json.loads(line).get("id") != 0:
        raise RuntimeError(f"window did not initialize: {line!r}")
    proc.stdin.write(INITIALIZED.encode() + b"\n")
    return proc, elapsed


def ping_window(proc: subprocess.Popen, count: int) -> list[float]:
    samples = []
    for i in range(count):
        msg = json.dumps({"jsonrpc": "2.0", "id": 1000 + i, "method": "ping"}).encode() + b"\n"
        started = time.perf_counter()
        proc.stdin.write(msg)
        line = read_line(proc, 30.0)
        samples.append((time.perf_counter() - started) * 1000)
        if json.loads(line).get("id") != 1000 + i:
            raise RuntimeError(f"unexpected answer to ping {i}: {line!r}")
    return samples


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def status(home: Home) -> dict:
    done = subprocess.run([sys.executable, "-m", "memesh", "daemon", "status", "--json"], env=home.env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout)


def cpu_shares(home: Home, daemon: psutil.Process, windows, workers, seconds: float) -> dict:
    """CPU time used during ``seconds`` by the daemon, the real proxies, the workers, the machine."""
    def total(procs) -> float:
        used = 0.0
        for proc in procs:
            try:
                times = psutil.Process(proc.pid).cpu_times()
                used += times.user + times.system
            except psutil.Error:
                pass
        return used

    groups = {"daemon": [daemon], "proxies": windows, "workers": workers}
    before = {name: total(procs) for name, procs in groups.items()}
    machine = psutil.cpu_times()
    time.sleep(seconds)
    after_machine = psutil.cpu_times()
    shares = {name: (total(procs) - before[name]) / seconds * 100 for name, procs in groups.items()}
    busy = sum(after_machine) - after_machine.idle - (sum(machine) - machine.idle)
    shares["machine"] = busy / seconds * 100
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1000, help="concurrent sessions before window N+1")
    parser.add_argument("--real", type=int, default=200, help="how many of them are real proxy processes")
    parser.add_argument("--workers", type=int, default=4, help="load-worker processes for the rest")
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--poll", type=float, default=0.0, help="long-poll seconds of the load sessions (0 = the proxy's own)")
    parser.add_argument("--probes", type=int, default=5, help="windows N+1 started one after another (each closed before the next)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep the inherited PYTHONDONTWRITEBYTECODE (every window then compiles memesh's sources)")
    args = parser.parse_args()
    real = min(args.real, args.windows)
    home = Home()
    if not args.no_bytecode_cache:
        # An installed memesh reuses its .pyc files; so do these windows and the daemon, even
        # where PYTHONDONTWRITEBYTECODE is set: the cache lives in the temporary home's folder
        # (PYTHONPYCACHEPREFIX), nothing is written beside the sources.
        home.env.pop("PYTHONDONTWRITEBYTECODE", None)
        home.env["PYTHONPYCACHEPREFIX"] = str(home.path / "pycache")
        subprocess.run([sys.executable, "-c", "import memesh.mcp.proxy, memesh.daemon.server"], env=home.env,
                       cwd=str(ROOT), check=True)
    print("bytecode: " + ("inherited (PYTHONDONTWRITEBYTECODE=%r)" % os.environ.get("PYTHONDONTWRITEBYTECODE", "")
                          if args.no_bytecode_cache else "cached, as an installed memesh"), flush=True)
    try:
        done = subprocess.run([sys.executable, "-m", "memesh", "daemon", "start"], env=home.env, cwd=str(ROOT),
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"daemon start failed: {done.stderr}")
        daemon = psutil.Process(home.daemon_pid())
        rss_idle = daemon.memory_info().rss / 1e6
        print(f"daemon pid {daemon.pid}; descriptor limit (soft, hard): {psutil.Process(daemon.pid).rlimit(psutil.RLIMIT_NOFILE)}", flush=True)
        t0 = time.monotonic()
        windows = []
        init_ms = []
        for _ in range(real):
            proc, ms = start_window(home)
            windows.append(proc)
            init_ms.append(ms)
        t_real = time.monotonic() - t0
        rest = args.windows - real
        workers = []
        per = [rest // args.workers + (1 if i < rest % args.workers else 0) for i in range(args.workers)] if rest else []
        for count in per:
            if count:
                workers.append(home.popen([sys.executable, "-c", WORKER, str(count), INITIALIZE, INITIALIZED, str(args.poll)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0))
        opened = 0
        for proc in workers:
            line = read_line(proc, 600.0).split()
            if line[:1] != [b"ready"]:
                raise RuntimeError(f"a load worker failed: {line!r} {proc.stderr.read(2000) if proc.poll() is not None else ''}")
            opened += int(line[1])
        t_all = time.monotonic() - t0
        time.sleep(3.0)  # let start-up settle: every session is polling
        before = status(home)
        cpu = cpu_shares(home, daemon, windows, workers, 5.0)
        rss_n = daemon.memory_info().rss / 1e6
        bare_ms = []
        for _ in range(args.probes):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import memesh.mcp.proxy"], env=home.env, cwd=str(ROOT), check=True)
            bare_ms.append((time.perf_counter() - started) * 1000)
        connector_ms = []
        from memesh.mcp.proxy import daemon_connector
        for _ in range(args.probes):
            started = time.perf_counter()
            submit_ch, poll_ch, sid, _info = daemon_connector(home.settings, {"cwd": str(ROOT), "pid": os.getpid()})()
            submit_ch.call("mcp", "submit", (sid, INITIALIZE), timeout=30.0)
            connector_ms.append((time.perf_counter() - started) * 1000)
            submit_ch.close()
            poll_ch.close()
        next_ms = []
        for _ in range(args.probes - 1):
            extra, ms = start_window(home)
            next_ms.append(ms)
            extra.stdin.close()
            extra.wait(timeout=30)
        proc, ms_next = start_window(home)
        next_ms.append(ms_next)
        pings = ping_window(proc, args.pings)
        after = status(home)
        rss_after = daemon.memory_info().rss / 1e6
        stderr_standalone = 0
        for w in windows + [proc]:
            w.stdin.close()
        for w in windows + [proc]:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            err = w.stderr.read() if w.poll() is not None else b""
            if b"standalone" in (err or b""):
                stderr_standalone += 1
        print(f"windows before N+1: {real + opened} ({real} real proxy processes, {opened} sessions over daemon_connector "
              f"in {len(workers)} load workers); opened in {t_all:.1f}s (real ones {t_real:.1f}s)")
        print(f"daemon status before N+1: clients {before['clientCount']}, connections {before['connections']}, threads {before['threads']}")
        print(f"daemon status after N+1: clients {after['clientCount']}, connections {after['connections']}, threads {after['threads']}")
        if init_ms:
            print(f"real windows, exec -> initialize answered: p50 {statistics.median(init_ms):.0f} ms, max {max(init_ms):.0f} ms")
        print(f"window N+1 exec -> initialize answered, {len(next_ms)} tries one after another: median {statistics.median(next_ms):.0f} ms, "
              f"min {min(next_ms):.0f} ms, max {max(next_ms):.0f} ms   (target {TARGETS['init']})")
        print(f"  of which the daemon's part (daemon_connector + initialize, in-process, {len(connector_ms)} tries): "
              f"median {statistics.median(connector_ms):.1f} ms, max {max(connector_ms):.1f} ms")
        print(f"window N+1 ping through its stdio ({len(pings)}): p50 {percentile(pings, 50):.3f} ms, p99 {percentile(pings, 99):.3f} ms"
              f"   (target p50 {TARGETS['ping_p50']})")
        print(f"CPU over 5 s with every window idle (percent of one core): daemon {cpu['daemon']:.0f}%, "
              f"{len(windows)} real proxies {cpu['proxies']:.0f}%, load workers {cpu['workers']:.0f}%, whole machine {cpu['machine']:.0f}% of {psutil.cpu_count()} cores")
        print(f"  a bare `python -c 'import memesh.mcp.proxy'` under that load: median {statistics.median(bare_ms):.0f} ms")
        print(f"daemon RSS: idle {rss_idle:.1f} MB, with {real + opened} windows {rss_n:.1f} MB, after N+1 {rss_after:.1f} MB"
              f"   (target {TARGETS['rss']})")
        print(f"windows that went standalone: {stderr_standalone}")
        return 0
    finally:
        home.cleanup()


if __name__ == "__main__":
    sys.exit(main())
