"""One window's start-up: exec of ``memesh`` to its ``initialize`` answer, against a running daemon.

Starts a daemon in a temporary MEMESH_HOME, then starts real windows one after another
(each closed before the next) and prints, in ms: exec → ``initialize`` answered, and for
comparison exec → exit of a bare interpreter (``python -c pass``) with the same flags, so
the difference is what memesh itself costs. ``--flags -S`` leaves out site-packages'
start-up files (a ``.pth`` that imports something on every start inflates every figure);
``--script`` starts the window the way the ``memesh`` console script does instead of
``python -m memesh``. Every process started here is stopped by its pid, the daemon by
its verified pid. Prints figures only.

Run: ``python bench/bench_startup.py [--runs 20] [--flags=-S] [--script]``.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--flags", default="", help="interpreter flags for every process timed, e.g. -S")
    parser.add_argument("--script", action="store_true", help="start windows as the console script does, not with -m")
    args = parser.parse_args()
    flags = args.flags.split()
    window = [sys.executable, *flags, *(["-c", CONSOLE_SCRIPT] if args.script else ["-m", "memesh"])]
    home = Home()
    try:
        done = subprocess.run([sys.executable, "-m", "memesh", "daemon", "start"], env=home.env, cwd=str(ROOT),
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"daemon start failed: {done.stderr}")
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; window: {' '.join(window[1:])}")
        bare, init = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, *flags, "-c", "pass"], env=home.env, cwd=str(ROOT), check=True)
            bare.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            proc = home.popen(window, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
            proc.stdin.write(INITIALIZE.encode() + b"\n")
            line = read_line(proc, 60.0)
            init.append((time.perf_counter() - started) * 1000)
            if b'"id":0' not in line.replace(b" ", b""):
                raise RuntimeError(f"window did not initialize: {line!r} {proc.stderr.read(2000) if proc.poll() is not None else ''}")
            proc.stdin.close()
            proc.wait(timeout=30)
        print(summary("bare interpreter, exec -> exit", bare))
        print(summary("window, exec -> initialize answered", init))
        print(f"difference of the medians (memesh's own part): {statistics.median(init) - statistics.median(bare):.1f} ms")
        print(f"load at the end {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        home.cleanup()


if __name__ == "__main__":
    sys.exit(main())
