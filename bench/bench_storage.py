"""SQLite and PostgreSQL storage side by side: search, open and write latency, and copy time.

For each size (10k and 100k entities) both backends are filled with the same generated
graph (SQLite by JSONL import; PostgreSQL by ``memesh storage copy`` of that SQLite
store, which is also the copy figure; the copy back into a new SQLite file is timed
too), then p50/p99 of search_nodes (a word query, two words, a substring), open_nodes
and add_observations are measured on each, called in-process through the store API (no
MCP, no daemon socket).

Before the timings the PostgreSQL tables are vacuumed and analysed, as autovacuum does
within a minute of a bulk load: the figures are those of a settled database, not of the
minute in which autovacuum works through the copy on the same cores.

The PostgreSQL server is a private one started for the run with the installed server
binaries (tests/pg_server.py: a temporary directory, a Unix socket, fsync off as in the
tests) and stopped at the end, or the one ``MEMESH_BENCH_PG_URL`` names (an empty
database you do not mind filling). The private server gets ``shared_buffers`` of
:data:`SHARED_BUFFERS`, as a team's server would have (PostgreSQL's default is 128 MB; a
dedicated server commonly gets a quarter of its memory): the 100k store, about 112 MB of
entities and their indexes, fits, as it would not in the test suite's 64 MB. Run: ``python bench/bench_storage.py [--quick]``.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_graph import jsonl, vocabulary  # noqa: E402
from memesh.store.copy import copy_storage  # noqa: E402
from memesh.store.storage import open_storage  # noqa: E402

SHARED_BUFFERS = "256MB"
TARGETS = {"search": "PostgreSQL p50 <= 10 ms at 100k", "add_observations": "PostgreSQL p50 <= 5 ms"}


def percentiles(fn: Callable[[int], object], calls: int) -> tuple[float, float]:
    times = []
    for i in range(calls):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def measure(storage, names: list[str], words: list[str], calls: int, rng: random.Random) -> dict[str, tuple[float, float]]:
    graph = storage.graph
    picks = [rng.sample(names, 5) for _ in range(calls)]
    terms = [rng.choice(words) for _ in range(calls)]
    pairs = [f"{rng.choice(words)} {rng.choice(words)}" for _ in range(calls)]
    parts = [rng.choice(words)[1:4] for _ in range(calls)]
    return {
        "search_nodes (1 word)": percentiles(lambda i: graph.search_nodes(terms[i]), calls),
        "search_nodes (2 words)": percentiles(lambda i: graph.search_nodes(pairs[i]), calls),
        "search_nodes (substring)": percentiles(lambda i: graph.search_nodes(parts[i]), calls),
        "open_nodes (5 names)": percentiles(lambda i: graph.open_nodes(picks[i]), calls),
        "add_observations": percentiles(lambda i: graph.add_observations(
            [{"entityName": picks[i][0], "contents": [f"bench note {i} {terms[i]}"]}]), calls),
    }


def settle(url: str) -> None:
    """VACUUM (ANALYZE) the store's tables, the work autovacuum starts soon after a bulk load."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) entities, observations, relations, memories, memory_tags")


def shared_buffers(url: str) -> str:
    """The server's shared_buffers setting, as it reports it."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SHOW shared_buffers").fetchone()[0]


def pg_url(stack: list) -> str:
    if os.environ.get("MEMESH_BENCH_PG_URL"):
        return os.environ["MEMESH_BENCH_PG_URL"]
    from tests.pg_server import PgServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("no PostgreSQL server binaries found; install 'postgresql' or set MEMESH_BENCH_PG_URL")
    server = PgServer(bin_dir, shared_buffers=SHARED_BUFFERS)
    stack.append(server)
    server.start()
    server.make_template()
    return server.create_database  # a fresh schema per size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k entities, fewer calls")
    args = parser.parse_args()
    sizes, calls = ((1_000, 10_000), 100) if args.quick else ((10_000, 100_000), 300)
    stack: list = []
    try:
        make_url = pg_url(stack)
        rows: list[tuple[str, str, float, float, float, float]] = []
        copies: list[str] = []
        for size in sizes:
            rng = random.Random(size)
            words = vocabulary(rng)
            text = jsonl(rng, words, size, size)
            names = [line.split('"name": "')[1].split('"')[0] for line in text.splitlines() if '"entity"' in line]
            with tempfile.TemporaryDirectory(prefix="mmbench") as tmp:
                lite = open_storage(f"sqlite:{tmp}/bench.db", Path(tmp) / "x.db")
                lite.graph.import_jsonl(io.StringIO(text))
                url = make_url() if callable(make_url) else make_url
                team = open_storage(url, Path(tmp) / "x.db")
                team.graph.stats()  # migrate before timing the copy
                started = time.perf_counter()
                copy_storage(lite, team)
                copies.append(f"copy {size:,} entities (+{size:,} relations) SQLite -> PostgreSQL: "
                              f"{time.perf_counter() - started:.1f} s")
                back = open_storage(f"sqlite:{tmp}/back.db", Path(tmp) / "x.db")
                started = time.perf_counter()
                copy_storage(team, back)
                copies.append(f"copy {size:,} entities (+{size:,} relations) PostgreSQL -> SQLite: "
                              f"{time.perf_counter() - started:.1f} s")
                back.close()
                settle(url)
                results = {name: measure(store, names, words, calls, random.Random(1))
                           for name, store in (("sqlite", lite), ("postgresql", team))}
                for op in results["sqlite"]:
                    rows.append((f"{size:,}", op, *results["sqlite"][op], *results["postgresql"][op]))
                team.close()
                lite.close()
        print(f"memesh storage bench ({calls} calls per figure, in-process store API, ms; "
              f"PostgreSQL shared_buffers {shared_buffers(url)})")
        print(f"{'entities':>9}  {'operation':<26} {'SQLite p50':>10} {'p99':>8}   {'PostgreSQL p50':>14} {'p99':>8}")
        for size, op, sp50, sp99, pp50, pp99 in rows:
            print(f"{size:>9}  {op:<26} {sp50:>10.2f} {sp99:>8.2f}   {pp50:>14.2f} {pp99:>8.2f}")
        for line in copies:
            print(line)
        print("targets: " + "; ".join(f"{k}: {v}" for k, v in TARGETS.items()))
    finally:
        for server in stack:
            server.cleanup()


if __name__ == "__main__":
    main()
