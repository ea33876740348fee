"""One window's start-up: exec of ``memesh`` to its ``initialize`` answer, against a running daemon.

Starts a daemon in a temporary MEMESH_HOME, then starts real windows one after another
(each closed before the next) and prints, in ms, exec → ``initialize`` answered

* as this environment runs Python (with ``PYTHONDONTWRITEBYTECODE`` set and no
  ``__pycache__`` in the tree, every window compiles memesh's modules from source), and
* with a bytecode cache, as an installed memesh has (a temporary ``PYTHONPYCACHEPREFIX``,
  filled by one window before the runs),

beside exec → exit of a bare interpreter (``python -c pass``) with the same flags, so the
difference is what memesh itself costs. The three are interleaved run by run, so that the
load of a shared machine weighs on each alike. ``--flags -S`` leaves out site-packages'
start-up files (a ``.pth`` that imports something on every start hides what memesh
imports); ``--script`` starts the window the way the ``memesh`` console script does
instead of ``python -m memesh``; ``--config-file`` gives the home a ``config.yaml``. Every process started here is stopped by its pid, the
daemon by its verified pid. Prints figures only.

Run: ``python bench/bench_startup.py [--runs 20] [--flags=-S] [--script] [--config-file]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench_windows import INITIALIZE, ROOT, Home, read_line  # same folder

# What the console script pip writes for ``memesh=memesh.cli.main:main`` does, minus its argv[0] fix-up.
CONSOLE_SCRIPT = "import sys; from memesh.cli.main import main; sys.exit(main())"


def summary(label: str, samples: list[float]) -> str:
    return (f"{label}: median {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms, "
            f"max {max(samples):.1f} ms ({len(samples)} runs)")


def time_window(home: Home, window: list[str], env: dict[str, str]) -> float:
    """Start one window, send initialize, return the ms until its answer; then close it."""
    started = time.perf_counter()
    proc = home.popen(window, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    proc.stdin.write(INITIALIZE.encode() + b"\n")
    line = read_line(proc, 60.0)
    elapsed = (time.perf_counter() - started) * 1000
    if b'"id":0' not in line.replace(b" ", b""):
        raise RuntimeError(f"window did not initialize: {line!r} {proc.stderr.read(2000) if proc.poll() is not None else ''}")
    proc.stdin.close()
    proc.wait(timeout=30)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--flags", default="", help="interpreter flags for every process timed, e.g. -S")
    parser.add_argument("--script", action="store_true", help="start windows as the console script does, not with -m")
    parser.add_argument("--config-file", action="store_true", help="give the home a config.yaml (as a user with settings has)")
    args = parser.parse_args()
    flags = args.flags.split()
    window = [sys.executable, *flags, *(["-c", CONSOLE_SCRIPT] if args.script else ["-m", "memesh"])]
    home = Home()
    try:
        if args.config_file:
            (home.path / "config.yaml").write_text("daemon:\n  log_level: warning\nproxy:\n  reconnect_budget: 30000\n")
        done = subprocess.run([sys.executable, "-m", "memesh", "daemon", "start"], env=home.env, cwd=str(ROOT),
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"daemon start failed: {done.stderr}")
        cached_env = {k: v for k, v in home.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached_env["PYTHONPYCACHEPREFIX"] = str(home.path / "pycache")
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; window: {' '.join(window[1:])}")
        time_window(home, window, cached_env)  # fills the bytecode cache
        bare, compiled, cached = [], [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, *flags, "-c", "pass"], env=home.env, cwd=str(ROOT), check=True)
            bare.append((time.perf_counter() - started) * 1000)
            compiled.append(time_window(home, window, home.env))
            cached.append(time_window(home, window, cached_env))
        print(summary("bare interpreter, exec -> exit", bare))
        for label, samples in (("window, sources compiled at start", compiled), ("window, bytecode cache", cached)):
            print(summary(f"{label}, exec -> initialize answered", samples))
            print(f"  difference of the medians (memesh's own part): {statistics.median(samples) - statistics.median(bare):.1f} ms")
        print(f"load at the end {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        home.cleanup()


if __name__ == "__main__":
    sys.exit(main())
