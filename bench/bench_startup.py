"""One window's start-up: exec of ``memesh`` to its ``initialize`` answer, against a running daemon.

Starts a daemon in a temporary MEMESH_HOME, then starts real windows one after another
(each closed before the next) and prints exec → ``initialize`` answered (wall ms) and the
CPU time of each window's whole life (user + system ms; steadier than wall time on a
loaded machine):

* with the sources compiled at every start, as happens when ``PYTHONDONTWRITEBYTECODE``
  is set and the tree has no ``__pycache__``, and
* with a bytecode cache, as an installed memesh has (a temporary ``PYTHONPYCACHEPREFIX``,
  filled by one window before the runs);

beside a bare interpreter (``python -c pass``) with the same flags, so the difference is
what memesh itself costs. The three are interleaved run by run, so that the load of a
shared machine weighs on each alike.

``--flags=-S`` leaves out site-packages' start-up files (a ``.pth`` that imports
something at every start hides what memesh imports); ``--script`` starts windows the way
the ``memesh`` console script does instead of ``python -m memesh``; ``--config-file``
gives the home a ``config.yaml``. Every process started here is stopped by its pid, the
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


def cpu_ms(usage) -> float:
    return (usage.ru_utime + usage.ru_stime) * 1000


def time_window(home: Home, window: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Start one window, send initialize; (ms until its answer, CPU ms of its whole life)."""
    started = time.perf_counter()
    proc = home.popen(window, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    proc.stdin.write(INITIALIZE.encode() + b"\n")
    line = read_line(proc, 60.0)
    elapsed = (time.perf_counter() - started) * 1000
    if b'"id":0' not in line.replace(b" ", b""):
        raise RuntimeError(f"window did not initialize: {line!r} {proc.stderr.read(2000) if proc.poll() is not None else ''}")
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)  # bounded: a window exits within 2 s of stdin EOF
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, cpu_ms(usage)


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
        bare, bare_cpu = [], []
        windows = {"sources compiled at start": ([], []), "bytecode cache": ([], [])}
        for _ in range(args.runs):
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, *flags, "-c", "pass"], env=home.env, cwd=str(ROOT))
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0
            bare.append((time.perf_counter() - started) * 1000)
            bare_cpu.append(cpu_ms(usage))
            for (wall, cpu), env in zip(windows.values(), (home.env, cached_env)):
                answered, used = time_window(home, window, env)
                wall.append(answered)
                cpu.append(used)
        print(summary("bare interpreter, exec -> exit", bare))
        print(summary("  its CPU time", bare_cpu))
        for label, (wall, cpu) in windows.items():
            print(summary(f"window, {label}, exec -> initialize answered", wall))
            print(summary("  CPU time of the window's whole life", cpu))
            print(f"  memesh's own part (difference of the medians): wall {statistics.median(wall) - statistics.median(bare):.1f} ms, "
                  f"CPU {statistics.median(cpu) - statistics.median(bare_cpu):.1f} ms")
        print(f"load at the end {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        home.cleanup()


if __name__ == "__main__":
    sys.exit(main())
