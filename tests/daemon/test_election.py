"""Election: however many ``memesh daemon start`` run at once, exactly one daemon serves.

Each round launches 32 real CLI processes at the same instant on an empty home. The
losers of the race must become clients of the winner (they report its pid and exit 0);
none may run a daemon of its own or fall back to standalone.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import CLI_TIMEOUT, wait_until

STARTERS = 32
ROUNDS = 10
PID_LINE = re.compile(r"memesh daemon running: pid (\d+)")


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_simultaneous_starts_on_an_empty_home_elect_exactly_one_daemon(memesh_home, round_no):
    argv = [sys.executable, "-m", "memesh", "daemon", "start"]
    procs = [memesh_home.popen(argv, text=True) for _ in range(STARTERS)]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a `memesh daemon start` did not finish within {CLI_TIMEOUT}s")
        results.append((proc.returncode, out, err))

    failures = [(code, err.strip()) for code, _out, err in results if code != 0]
    assert failures == [], f"{len(failures)} of {STARTERS} starts failed: {failures[:3]}"
    pids = set()
    for _code, out, _err in results:
        match = PID_LINE.search(out)
        assert match, f"start did not report a pid: {out!r}"
        pids.add(int(match.group(1)))
    assert len(pids) == 1, f"the starters report different daemons: {sorted(pids)}"
    (pid,) = pids

    record = memesh_home.record()
    assert record is not None and record["pid"] == pid
    assert memesh_home.holder().get("pid") == pid
    # The daemon's start-up fork may still be exiting: wait for it, then count.
    daemons = wait_until(lambda: [p.pid for p in memesh_home.daemons()] == [pid] and [pid], 5.0,
                         f"exactly one daemon process (pid {pid}) for this home")
    assert daemons == [pid]
    assert "another daemon holds" not in memesh_home.log_text(), "a second daemon was spawned and lost the lifetime lock"
