"""Latency of the knowledge graph store at 1k, 10k and 100k entities.

Fills a temporary database (by JSONL import) at each size, then prints p50/p99 of
search_nodes (by kind of query), open_nodes and add_observations, and the time to import
100,000 JSONL lines into an empty database. Run: ``python bench/bench_graph.py``.
"""
from __future__ import annotations

import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memesh.store.graph import KnowledgeGraph  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
CALLS = 300
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "dor", "vex", "qui", "zen", "ul"]


def vocabulary(rng: random.Random, n: int = 5000) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def jsonl(rng: random.Random, words: list[str], entities: int, relations: int) -> str:
    names = [f"{rng.choice(words).title()} {rng.choice(words).title()} {i}" for i in range(entities)]
    lines = []
    for name in names:
        observations = [" ".join(rng.choices(words, k=rng.randint(6, 14))) for _ in range(3)]
        lines.append({"type": "entity", "name": name, "entityType": rng.choice(words[:40]),
                      "observations": observations})
    for _ in range(relations):
        lines.append({"type": "relation", "from": rng.choice(names), "to": rng.choice(names),
                      "relationType": rng.choice(words[:20])})
    return "".join(json.dumps(line) + "\n" for line in lines)


def percentiles(fn: Callable[[int], object], calls: int = CALLS) -> str:
    times = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"p50 {statistics.median(times):7.2f} ms  p99 {p99:7.2f} ms"


def bench_size(size: int, directory: Path) -> None:
    rng = random.Random(size)
    words = vocabulary(rng)
    text = jsonl(rng, words, size, size // 4)
    graph = KnowledgeGraph(directory / f"graph-{size}.db")
    start = time.perf_counter()
    graph.import_jsonl(io.StringIO(text))
    print(f"\n== {size:,} entities (fill: {len(text.splitlines()):,} lines in "
          f"{time.perf_counter() - start:.2f} s; {graph.stats()})")
    names = [json.loads(line)["name"] for line in text.splitlines()[:size]]
    queries = {
        "one word": lambda i: rng.choice(words),
        "two words": lambda i: f"{rng.choice(words)} {rng.choice(words)}",
        "name": lambda i: rng.choice(names),
        "substring": lambda i: rng.choice(words)[1:5],
        "no match": lambda i: f"zzz{i}qqq",
    }
    mixed = list(queries.values())
    print(f"  search_nodes (mixed)    {percentiles(lambda i: graph.search_nodes(mixed[i % 5](i)))}")
    for kind, make in queries.items():
        print(f"    {kind:<21} {percentiles(lambda i: graph.search_nodes(make(i)), CALLS // 3)}")
    print(f"  open_nodes (5 names)    {percentiles(lambda i: graph.open_nodes(rng.sample(names, 5)))}")

    def add_one(i: int) -> None:
        graph.add_observations([{"entityName": rng.choice(names), "contents": [f"bench note {i}"]}])

    print(f"  add_observations (1)    {percentiles(add_one)}")
    graph.close()


def bench_import(directory: Path) -> None:
    rng = random.Random(7)
    text = jsonl(rng, vocabulary(rng), 80_000, 20_000)
    graph = KnowledgeGraph(directory / "import.db")
    start = time.perf_counter()
    counts = graph.import_jsonl(io.StringIO(text))
    elapsed = time.perf_counter() - start
    print(f"\n== import_jsonl of {len(text.splitlines()):,} lines into an empty database: "
          f"{elapsed:.2f} s ({counts})")
    graph.close()


def main() -> None:
    import sqlite3
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {CALLS} calls per figure")
    with tempfile.TemporaryDirectory() as directory:
        for size in SIZES:
            bench_size(size, Path(directory))
        bench_import(Path(directory))


if __name__ == "__main__":
    main()
