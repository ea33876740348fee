"""Speed and memory of the memesh daemon, measured with real processes in temporary homes.

Prints:

* daemon spawn → ready (ms): from spawning the detached daemon to its readiness line,
  median of several runs, a fresh home each time;
* client connect + hello (ms): ``Mesh(...)`` against a running daemon (connect,
  authenticate both ways, enter the session, hello);
* control ping p50 / p99 (µs) from one client;
* aggregate calls/s with 8 and 64 client processes, each with its own ``Mesh``,
  pinging a fixed number of times after a common start signal;
* the daemon's RSS (MB) when idle, fresh and again after the load.

Targets on the project's 2-core machines are printed beside each figure. Every daemon
started here is stopped by its verified pid and every home removed, whatever happens.
Run: ``python bench/bench_daemon.py [--quick]``.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from memesh.config import load_settings  # noqa: E402
from memesh.daemon import lock as lockmod  # noqa: E402
from memesh.daemon.client import Mesh  # noqa: E402
from memesh.daemon.spawn import spawn_daemon  # noqa: E402
from memesh.paths import paths_for  # noqa: E402

TARGETS = {
    "spawn": "<= 250 ms",
    "ping_p50": "<= 60 us",
    "ping_p99": "<= 250 us",
    "calls64": ">= 15000 calls/s",
    "rss": "<= 30 MB",
}

CLIENT = r"""
import json, sys, time
from memesh.config import load_settings
from memesh.daemon.client import Mesh
calls = int(sys.argv[1])
mesh = Mesh(load_settings(), name="bench", kind="bench")
ping = mesh.control.ping
ping()
print("ready", flush=True)
sys.stdin.readline()
start = time.time()
for _ in range(calls):
    ping()
end = time.time()
print(json.dumps({"start": start, "end": end, "calls": calls}), flush=True)
mesh.close()
"""


class Home:
    """A temporary MEMESH_HOME whose daemon is always stopped by verified pid."""

    def __init__(self) -> None:
        self.path = pathlib.Path(tempfile.mkdtemp(prefix="mmb", dir="/tmp"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MEMESH_")}
        self.env.update({"MEMESH_HOME": str(self.path), "MEMESH_DAEMON_IDLE_TIMEOUT": "600000", "MEMESH_DAEMON_LOG_LEVEL": "warning"})
        self.settings = load_settings(self.env)
        self.paths = paths_for(self.path, self.env)

    def daemon_pid(self) -> int | None:
        return lockmod.read_holder(self.paths.lifetime_lock).get("pid") if lockmod.lifetime_held(self.paths.lifetime_lock) else None

    def stop(self) -> None:
        holder = lockmod.read_holder(self.paths.lifetime_lock)
        pid = holder.get("pid")
        if lockmod.lifetime_held(self.paths.lifetime_lock) and isinstance(pid, int):
            try:
                proc = psutil.Process(pid)
                if lockmod.create_times_match(float(holder.get("createTime") or 0), proc.create_time()):
                    proc.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        deadline = time.monotonic() + 10
        while lockmod.lifetime_held(self.paths.lifetime_lock) and time.monotonic() < deadline:
            time.sleep(0.01)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.path, ignore_errors=True)


def spawn_ready(home: Home) -> float:
    """Seconds from spawning the daemon to its readiness line."""
    started = time.perf_counter()
    line = spawn_daemon(home.settings, home.paths)
    elapsed = time.perf_counter() - started
    assert line.startswith("ready"), line
    return elapsed


def bench_spawn(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        home = Home()
        try:
            times.append(spawn_ready(home))
        finally:
            home.remove()
    return times


def bench_connect(home: Home, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        mesh = Mesh(home.settings, name="bench-connect", kind="bench")
        times.append(time.perf_counter() - started)
        mesh.close()
    return times


def bench_ping(home: Home, calls: int) -> list[float]:
    mesh = Mesh(home.settings, name="bench-ping", kind="bench")
    ping = mesh.control.ping
    for _ in range(1000):  # warm up
        ping()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        started = clock()
        ping()
        samples.append(clock() - started)
    mesh.close()
    return [s / 1000 for s in samples]


def bench_aggregate(home: Home, clients: int, calls_each: int) -> tuple[float, float]:
    """(calls/s over the whole run, calls/s by the parent's wall clock)."""
    procs = [
        subprocess.Popen([sys.executable, "-c", CLIENT, str(calls_each)], env=home.env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
        for _ in range(clients)
    ]
    try:
        for proc in procs:
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a bench client failed to connect: {line!r}")
        started = time.time()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.stdout.readline()) for proc in procs]
        wall = time.time() - started
        for proc in procs:
            proc.wait(timeout=60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    total = sum(r["calls"] for r in results)
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return total / span, total / wall


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / (1024 * 1024)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the script)")
    args = parser.parse_args()
    spawn_runs, connect_runs, pings = (3, 20, 2000) if args.quick else (9, 100, 20000)
    calls8, calls64 = (500, 100) if args.quick else (5000, 1000)

    print(f"memesh daemon benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    spawn = bench_spawn(spawn_runs)
    print(f"daemon spawn -> ready       median {statistics.median(spawn) * 1000:7.1f} ms   "
          f"(min {min(spawn) * 1000:.1f}, max {max(spawn) * 1000:.1f}; {spawn_runs} runs)   target {TARGETS['spawn']}")

    home = Home()
    try:
        spawn_ready(home)
        pid = home.daemon_pid()
        time.sleep(1.0)  # let start-up settle before measuring idle memory
        idle_fresh = rss_mb(pid)
        connect = bench_connect(home, connect_runs)
        print(f"client connect + hello      median {statistics.median(connect) * 1000:7.2f} ms   "
              f"(p99 {percentile(connect, 99) * 1000:.2f}; {connect_runs} runs)")
        ping = bench_ping(home, pings)
        print(f"control ping                p50 {percentile(ping, 50):7.1f} us   target {TARGETS['ping_p50']}")
        print(f"                            p99 {percentile(ping, 99):7.1f} us   target {TARGETS['ping_p99']}   ({pings} calls)")
        for clients, calls in ((8, calls8), (64, calls64)):
            span_rate, wall_rate = bench_aggregate(home, clients, calls)
            target = f"   target {TARGETS['calls64']}" if clients == 64 else ""
            print(f"aggregate, {clients:2d} clients        {span_rate:9.0f} calls/s   "
                  f"({clients} x {calls} pings; {wall_rate:.0f}/s by wall clock){target}")
        time.sleep(1.0)  # idle again
        idle_after = rss_mb(pid)
        threads = psutil.Process(pid).num_threads()
        print(f"daemon idle RSS             {idle_fresh:7.1f} MB fresh, {idle_after:.1f} MB after the load "
              f"({threads} threads)   target {TARGETS['rss']}")
    finally:
        home.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
