"""Time `memesh graph import` and `export` of a 100,000-line file in the reference JSONL format.

Prints the wall time of the real CLI (a fresh process, a fresh temporary MEMESH_HOME),
so the figure includes start-up, parsing, the transaction and index building.
Target: import under 10 s. Usage: python bench/bench_import.py [--lines N]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

WORDS = ("python sqlite daemon socket graph memory window session proxy cache index query "
         "thread signal upgrade restart lock record heartbeat client server schema migration").split()


def make_file(path: str, lines: int, seed: int = 7) -> tuple[int, int]:
    rng = random.Random(seed)
    entities = int(lines * 0.8)
    relations = lines - entities
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(entities):
            obs = [" ".join(rng.choices(WORDS, k=8)) for _ in range(3)]
            fh.write(json.dumps({"type": "entity", "name": f"entity-{i}", "entityType": rng.choice(WORDS), "observations": obs}) + "\n")
        for i in range(relations):
            a, b = rng.randrange(entities), rng.randrange(entities)
            fh.write(json.dumps({"type": "relation", "from": f"entity-{a}", "to": f"entity-{b}", "relationType": f"rel-{i}"}) + "\n")
    return entities, relations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="mmbi", dir="/tmp")
    try:
        source = os.path.join(work, "graph.jsonl")
        entities, relations = make_file(source, args.lines)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMESH_")}
        env.update(MEMESH_HOME=os.path.join(work, "home"), MEMESH_DISABLE_DAEMON="1")
        size = os.path.getsize(source) / 1e6
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        print(f"file: {args.lines:,} lines ({entities:,} entities, {relations:,} relations), {size:.1f} MB")
        for label, argv in (("import", ["graph", "import", source]), ("export", ["graph", "export", os.path.join(work, "out.jsonl")])):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "memesh", *argv], env=env, capture_output=True, text=True, timeout=600)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                print(f"{label} failed: {done.stderr}")
                return 1
            target = "   (target < 10 s)" if label == "import" else ""
            print(f"memesh graph {label:<7} {elapsed:6.2f} s{target}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
