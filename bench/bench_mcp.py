"""memesh over MCP, end to end, with real processes — and the reference server beside it.

Prints, for issue 3's acceptance:

1. proxy exec → ``initialize`` response (daemon running; for context also cold — the
   window starts the daemon — and standalone);
2. ``ping`` round trip through the proxy, stdio included;
3. ``search_nodes`` / ``open_nodes`` / ``add_observations`` latency at 1k, 10k, 100k
   entities, memesh and the reference ``@modelcontextprotocol/server-memory`` side by side;
4. resident memory of the daemon + N idle proxies (and of N reference servers).

Everything runs in a fresh temporary directory under /tmp, one short ``MEMESH_HOME``
per phase. Every process the script starts is stopped by pid before it exits, on error
and on Ctrl-C too: windows (and npm) by process group, daemons by the pid in
``daemon.lock`` (or the lifetime-lock holder) after checking with psutil that it is
alive and runs ``memesh.daemon.process`` for this very home.

Run: ``python bench/bench_mcp.py`` (all of it, a few minutes) or ``--quick`` (no 100k
database, no 50 proxies). ``--help`` lists the knobs. The reference server is installed
with npm into ``bench/.node`` when that folder is gitignored, else into the temporary
directory; ``--reference PATH/dist/index.js`` uses one already installed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import os
import platform
import random
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memesh.paths import paths_for  # noqa: E402
from memesh.store.graph import KnowledgeGraph  # noqa: E402

CLAUDE_CODE_INITIALIZE = (
    '{"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},'
    '"clientInfo":{"name":"claude-code","version":"2.1.x"}},"jsonrpc":"2.0","id":0}'
)
INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}'
DAEMON_MODULE = "memesh.daemon.process"
REFERENCE_PACKAGE = "@modelcontextprotocol/server-memory"

STEP_TIMEOUT = 30.0  # seconds any single expected reply may take (a start-up, a 100k-entity call)
KILL_WAIT = 10.0  # seconds for a killed process to vanish
TARGETS = {"init": 80.0, "ping": 0.3, "search100k": 5.0}  # ms, p50

# Common English words for observations and queries, plus made-up proper nouns (people,
# places, products) so that some words are rare: a one-word query hits from a few dozen
# to a few thousand entities at 100k, as real memories do.
WORDS = """
able about above accept access account across action active actual add address admin
advice after again against agenda agent agree ahead alert align allow almost alone along
already also always amount analysis annual answer anyone apply approach approve archive
area argue around arrive article aside asked assign assume attach attempt audit author
automate available average avoid aware backend backlog backup balance bank base basic
batch become before begin behind believe below benefit best better between beyond bill
billing block board body book borrow boss both bottom branch brand break brief bring
broken browser budget bug build bundle business busy buyer cache calendar call calm
campaign cancel capacity capture card care career careful carry case cash catch cause
certain chain chair change channel chapter charge chart cheap check choice choose city
claim class clean clear client close cloud cluster code coffee collect color column
comment commit common company compare compile complete complex concern config confirm
connect consider contact contain content context continue contract control convert copy
core correct cost count country couple course cover create credit critical culture
current customer cycle daily damage dark dashboard data database date deadline deal debt
decide decision default defect define degree delay delete deliver demand demo deploy
depth design desk detail detect develop device diagram differ direct discuss disk display
distance docs document domain draft dream drive driver early easy edge edit editor effect
effort email employee enable energy engine engineer enough ensure enter entire entry
environment error escalate estimate event evidence exact example expect expense expert
explain export extend extra factor failure fair family fast feature feedback field figure
file filter final finance find finish firm first fix flag flight floor flow focus folder
follow font force forecast forget form format forward frame free friday friend front full
function future game garden gather general goal good grant graph great green group grow
guess guide habit half handle happy hardware header health hear heavy help hidden high
hire history hold holiday home hope host hour house idea image impact import improve
include income increase index infra input insight install instance intake interest
internal invoice issue item java join journal judge junior keep kernel key kind kitchen
know label language laptop large last late launch layer lead learn lease leave legal
level library license light limit line link list load local lock login long loop lunch
machine main major manage manager manual market master match matter meeting member memory
mentor merge message method metric middle migrate minor mobile model module monday money
monitor month morning move music name native need network never news next night node
normal note notice number object offer office offline often onboard online open option
order other outage output owner package page paper parent parser partner party patch path
pause payment peak people period person phone pick pipeline plan platform player policy
pool port positive post power prefer prepare present press price print priority private
problem process product profile program project prompt proof proposal protect provide
public pull purchase push quality query question queue quick quiet quota rack random rate
reach read ready real reason receive recent record reduce refactor region release remote
remove render repair repeat replace report request require research reset resource
response rest result retry return review risk road role rollback room root route rule
runtime safety salary sale sample save scale schedule schema scope score screen script
search season second secret section secure seed select senior send server service session
setting setup share shift ship short signal simple single site size skill slack slow small
smart snapshot social socket software solid source space speak special speed spend split
sprint stable staff stage standard start state status step stock storage store story
strategy stream street strong student style subject submit success summary support switch
sync system table talent target task team test text theme thread ticket time timeline
token tool topic total track trade train transfer travel trend trial trigger trust tuesday
tutorial update upgrade upload usage user valid value vendor version video view visit
volume wait wallet warning watch weekly weight widget window winter wish worker workflow
write yearly yellow zone
""".split()
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "dor", "vex", "qui", "zen", "ul", "bra", "sto"]
KINDS = ["person", "project", "service", "library", "meeting", "decision", "customer", "team", "document", "incident"]


# The least any Python stdio server can do: start, read a line, write a line.
FLOOR_SERVER = ("import sys\nline = sys.stdin.readline()\n"
                "sys.stdout.write('{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}\\n')\nsys.stdout.flush()\nsys.stdin.read()\n")


class BenchError(Exception):
    pass


class BudgetExceeded(BaseException):
    """The whole run went over --budget seconds (raised from SIGALRM)."""


# --------------------------------------------------------------------------- processes

LIVE: list["Window"] = []  # every server/window process started, for the final cleanup
HOMES: list[Path] = []  # every MEMESH_HOME created, whose daemon the cleanup stops
_DEFER: dict[str, Any] = {"depth": 0, "pending": None}


@contextlib.contextmanager
def uninterrupted():
    """Hold Ctrl-C / SIGTERM / the budget alarm while a child is spawned and registered, so
    that no process is ever started without the cleanup knowing it; raised right after."""
    _DEFER["depth"] += 1
    try:
        yield
    finally:
        _DEFER["depth"] -= 1
        if _DEFER["depth"] == 0 and _DEFER["pending"] is not None:
            pending, _DEFER["pending"] = _DEFER["pending"], None
            raise pending


def raise_or_defer(exc: BaseException) -> None:
    if _DEFER["depth"]:
        _DEFER["pending"] = exc
        return
    raise exc


class Window:
    """A stdio server process (a memesh window or a reference server), driven from the
    calling thread with select + os.read: no reader thread between the pipe and the clock."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path, name: str):
        self.name = name
        self.log = log
        self._log_file = open(log, "ab")
        with uninterrupted():
            self.spawned = time.perf_counter()
            try:
                self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=self._log_file, start_new_session=True)
            except BaseException:
                self._log_file.close()
                raise
            LIVE.append(self)
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._buf = bytearray()
        self._scan = 0
        self._ids = itertools.count(1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, n: int = 1500) -> str:
        try:
            return self.log.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        if not data.endswith(b"\n"):
            data += b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self._in, view):]

    def readline(self, timeout: float) -> tuple[bytes, float]:
        """The next stdout line and the perf_counter at which it was complete."""
        deadline = time.monotonic() + timeout
        while True:
            end = self._buf.find(b"\n", self._scan)
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 1]
                self._scan = 0
                return line, time.perf_counter()
            self._scan = len(self._buf)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no reply within {timeout:.0f}s; stderr: {self.stderr_tail()!r}")
            ready, _, _ = select.select([self._out], [], [], left)
            if ready:
                chunk = os.read(self._out, 1 << 20)
                if not chunk:
                    raise BenchError(f"{self.name} closed stdout (exit {self.proc.poll()}); stderr: {self.stderr_tail()!r}")
                self._buf += chunk

    def wait_reply(self, request_id: Any, since: float, timeout: float = STEP_TIMEOUT) -> tuple[dict, float]:
        """(reply, ms since ``since``), answering what the server asks in between
        (``roots/list``: no roots; anything else: method not found)."""
        deadline = time.monotonic() + timeout
        while True:
            line, at = self.readline(max(0.0, deadline - time.monotonic()))
            message = json.loads(line)
            if "method" in message:
                if "id" in message:
                    if message["method"] == "roots/list":
                        self.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"roots": []}}))
                    else:
                        self.send(json.dumps({"jsonrpc": "2.0", "id": message["id"],
                                              "error": {"code": -32601, "message": "not supported by the bench client"}}))
                continue
            if message.get("id") == request_id:
                return message, (at - since) * 1000.0

    def request(self, method: str, params: dict | None = None, timeout: float = STEP_TIMEOUT) -> tuple[dict, float]:
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        line = json.dumps(message)
        start = time.perf_counter()
        self.send(line)
        reply, ms = self.wait_reply(request_id, start, timeout)
        if "error" in reply:
            raise BenchError(f"{self.name}: {method} failed: {reply['error']}")
        return reply["result"], ms

    def initialize(self, timeout: float = STEP_TIMEOUT) -> float:
        """Claude Code's exact first line, then ``initialized``; ms from spawn to the reply."""
        self.send(CLAUDE_CODE_INITIALIZE)
        reply, ms = self.wait_reply(0, self.spawned, timeout)
        if "result" not in reply:
            raise BenchError(f"{self.name}: initialize failed: {reply}")
        self.send(INITIALIZED)
        return ms

    def call_tool(self, name: str, arguments: dict, timeout: float = STEP_TIMEOUT) -> tuple[dict, float]:
        result, ms = self.request("tools/call", {"name": name, "arguments": arguments}, timeout)
        if result.get("isError"):
            raise BenchError(f"{self.name}: {name} returned an error: {str(result.get('content'))[:300]}")
        return result, ms

    def close(self, timeout: float = 5.0) -> None:
        """EOF on stdin (how a client ends a stdio server); killed if it does not exit."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:
                print(f"warning: {self.name} (pid {self.proc.pid}) did not die within {KILL_WAIT:.0f}s", file=sys.stderr)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self._log_file.close()
        if self in LIVE:
            LIVE.remove(self)


def run_bounded(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run a helper command in its own process group; the group is killed on timeout or interrupt."""
    with uninterrupted():
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.communicate(timeout=KILL_WAIT)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def tree_rss(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of a process and its descendants. PSS shares each page among
    the processes that map it, so PSS adds up to what N processes really cost together."""
    rss = pss = 0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.uss)
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return rss, pss


# --------------------------------------------------------------------------- memesh homes


class Home:
    """A temporary ``MEMESH_HOME`` and the environment memesh runs with in it."""

    def __init__(self, root: Path, name: str, bytecode: bool = True):
        self.path = root / name
        self.path.mkdir(mode=0o700)
        HOMES.append(self.path)
        self.root = root
        self.paths = paths_for(self.path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMESH_")}
        env["MEMESH_HOME"] = str(self.path)
        # Only a safety net: should this script be SIGKILLed, an orphaned daemon leaves by
        # itself after 2 idle minutes (its windows exit on stdin EOF).
        env["MEMESH_DAEMON_IDLE_TIMEOUT"] = "120000"
        if bytecode and BYTECODE["cache"]:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        self.env = env
        self._count = itertools.count(1)

    def window(self, argv: list[str], standalone: bool = False) -> Window:
        env = dict(self.env)
        if standalone:
            env["MEMESH_DISABLE_DAEMON"] = "1"
        n = next(self._count)
        return Window(argv, env, self.root, self.path / f"window-{n}.stderr", f"memesh window {n} ({self.path.name})")

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        done = run_bounded([sys.executable, "-m", "memesh", *args], self.env, self.root, timeout)
        if done.returncode != 0:
            raise BenchError(f"memesh {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-1500:]}")
        return done

    def start_daemon(self) -> int:
        self.cli("daemon", "start")
        pid = self.daemon_pid()
        if pid is None:
            raise BenchError("memesh daemon start returned but no verified daemon is running")
        return pid

    def stop_daemon(self) -> None:
        """Graceful stop (leaves a clean home for the next cold start); kill if that fails."""
        try:
            self.cli("daemon", "stop", timeout=45.0)
        except (BenchError, subprocess.TimeoutExpired) as exc:
            print(f"warning: graceful stop failed ({exc}); killing the daemon", file=sys.stderr)
        kill_daemons(self.path)

    def daemon_pid(self) -> int | None:
        for proc in daemon_candidates(self.path):
            return proc.pid
        return None


# Windows and daemons compile each module once and then reuse the .pyc, as an installed
# memesh does, even where PYTHONDONTWRITEBYTECODE is set: the cache lives in the temporary
# directory (PYTHONPYCACHEPREFIX), so nothing is written next to the sources.
# --no-bytecode-cache keeps the inherited setting instead.
BYTECODE = {"cache": True}


def _is_our_daemon(proc: psutil.Process, home: Path) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if not any(DAEMON_MODULE in part for part in proc.cmdline()):
            return False
        try:
            named = proc.environ().get("MEMESH_HOME")
        except (psutil.AccessDenied, OSError):
            named = None
        return named is None or named == str(home)
    except (psutil.Error, OSError):
        return False


def daemon_candidates(home: Path) -> list[psutil.Process]:
    """Verified live daemons of ``home``: the pid in daemon.lock, the lifetime-lock holder,
    and (in case one is between fork and record) any process running the daemon module
    whose environment names this home."""
    found: dict[int, psutil.Process] = {}
    for name in ("daemon.lock", "daemon.lifetime.lock"):
        try:
            pid = json.loads((home / name).read_bytes() or b"{}").get("pid")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(pid, int) and pid > 0 and pid != os.getpid():
            try:
                proc = psutil.Process(pid)
            except psutil.Error:
                continue
            if _is_our_daemon(proc, home):
                found[pid] = proc
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid == os.getpid():
            continue
        try:
            if any(DAEMON_MODULE in part for part in proc.cmdline()) and proc.environ().get("MEMESH_HOME") == str(home):
                if _is_our_daemon(proc, home):
                    found[proc.pid] = proc
        except (psutil.Error, OSError):
            continue
    return list(found.values())


def kill_daemons(home: Path) -> None:
    victims = daemon_candidates(home)
    for proc in victims:
        try:
            proc.kill()  # psutil refuses if the pid now names another process
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + KILL_WAIT
    for proc in victims:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except psutil.TimeoutExpired:
            print(f"warning: daemon pid {proc.pid} did not die within {KILL_WAIT:.0f}s", file=sys.stderr)
        except psutil.Error:
            pass


def strays(root: Path) -> list[psutil.Process]:
    """Processes left that belong to this run: their MEMESH_HOME or MEMORY_FILE_PATH lies
    in this run's unique temporary directory (e.g. a daemon that a window, starting up as
    the run was interrupted, brought up again)."""
    prefix = str(root) + os.sep
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            env = proc.environ()
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.Error, OSError):
            continue
        if env.get("MEMESH_HOME", "").startswith(prefix) or env.get("MEMORY_FILE_PATH", "").startswith(prefix):
            found.append(proc)
    return found


def cleanup(root: Path | None) -> None:
    """Windows by process group, then daemons by verified pid, then — until none is left —
    anything else of this run's (a straggler can start a daemon while the first pass runs)."""
    for window in list(LIVE):
        window.kill()
    for home in HOMES:
        kill_daemons(home)
    if root is not None:
        for _ in range(5):
            left = strays(root)
            if not left:
                break
            for proc in left:
                try:
                    if os.getpgid(proc.pid) == proc.pid and not _is_our_daemon(proc, Path(proc.environ().get("MEMESH_HOME", "/"))):
                        os.killpg(proc.pid, signal.SIGKILL)  # a window (or helper) leads its own group
                    else:
                        proc.kill()
                except (psutil.Error, OSError):
                    pass
            psutil.wait_procs(left, timeout=KILL_WAIT)
            time.sleep(0.3)
        else:
            print(f"warning: processes of this run still alive: {[p.pid for p in strays(root)]}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- data


class Corpus:
    """``size`` entities (3–4 observations of 6–14 words) and size/4 relations, as the
    reference server's JSONL; the same lines fill memesh's database."""

    def __init__(self, size: int, seed: int = 1):
        rng = random.Random(seed * 1_000_003 + size)
        nouns: set[str] = set()
        while len(nouns) < 4000:
            nouns.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title())
        self.nouns = sorted(nouns)
        self.names: list[str] = []
        self.observations: list[list[str]] = []
        lines = []
        for i in range(size):
            name = f"{rng.choice(self.nouns)} {rng.choice(WORDS).title()} {i}"
            observations = []
            for _ in range(rng.randint(3, 4)):
                words = rng.choices(WORDS, k=rng.randint(6, 14))
                words.insert(rng.randrange(len(words) + 1), rng.choice(self.nouns))
                observations.append(" ".join(words).capitalize())
            self.names.append(name)
            self.observations.append(observations)
            lines.append(json.dumps({"type": "entity", "name": name, "entityType": rng.choice(KINDS),
                                     "observations": observations}))
        for _ in range(size // 4):
            lines.append(json.dumps({"type": "relation", "from": rng.choice(self.names), "to": rng.choice(self.names),
                                     "relationType": rng.choice(["works_on", "owns", "depends_on", "reports_to", "mentions"])}))
        self.text = "\n".join(lines) + "\n"

    def queries(self, n: int, seed: int) -> list[tuple[str, str]]:
        """(kind, query): alternately one word and two adjacent words, taken from a random
        entity's observations, so every query hits (also as the reference's substring)."""
        rng = random.Random(seed)
        out = []
        for i in range(n):
            words = rng.choice(rng.choice(self.observations)).split()
            if i % 2 == 0:
                out.append(("one word", rng.choice(words).lower()))
            else:
                j = rng.randrange(len(words) - 1)
                out.append(("two words", f"{words[j]} {words[j + 1]}".lower()))
        return out

    def fill_memesh(self, home: Home) -> float:
        start = time.perf_counter()
        graph = KnowledgeGraph(home.paths.db)
        try:
            graph.import_jsonl(io.StringIO(self.text))
        finally:
            graph.close()
        return time.perf_counter() - start

    def fill_reference(self, path: Path) -> None:
        path.write_text(self.text.rstrip("\n"), encoding="utf-8")


# --------------------------------------------------------------------------- figures


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def fmt_ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms" if value >= 1 else f"{value:.3f} ms"


def summary(values: list[float], hi: float = 0.99) -> str:
    label = f"p{round(hi * 100)}"
    return f"p50 {fmt_ms(statistics.median(values)):>9}   {label} {fmt_ms(pct(values, hi)):>9}"


def ratio(theirs: float, ours: float) -> str:
    r = theirs / ours
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"


def verdict(value: float, target: float) -> str:
    return f"target ≤ {fmt_ms(target)}: {'met' if value <= target else 'MISSED'}"


def rule(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 86 - len(title)), flush=True)


# --------------------------------------------------------------------------- reference


def find_reference(args, root: Path) -> tuple[list[str] | None, str]:
    """(argv to run the reference server, note). Installs it with npm when needed."""
    if args.no_reference:
        return None, "skipped (--no-reference)"
    node = shutil.which("node")
    if node is None:
        return None, "unavailable: node is not on PATH"
    if args.reference:
        script = Path(args.reference).resolve()
        if not script.is_file():
            return None, f"unavailable: {script} does not exist"
        return [node, str(script)], f"{script}"
    ignored = False
    try:
        ignored = any(line.strip() in ("bench/.node/", "bench/.node", "/bench/.node/", "/bench/.node")
                      for line in (REPO / ".gitignore").read_text().splitlines())
    except OSError:
        pass
    prefix = REPO / "bench" / ".node" if ignored else root / "node"
    script = prefix / "node_modules" / REFERENCE_PACKAGE / "dist" / "index.js"
    note = ""
    if not ignored:
        note = " (installed for this run only: add `bench/.node/` to .gitignore to keep it between runs)"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            return None, "unavailable: npm is not on PATH"
        prefix.mkdir(parents=True, exist_ok=True)
        print(f"installing {REFERENCE_PACKAGE}@{args.reference_version} with npm into {prefix} …", flush=True)
        try:
            done = run_bounded([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
                                f"{REFERENCE_PACKAGE}@{args.reference_version}"], dict(os.environ), root, 300.0)
        except subprocess.TimeoutExpired:
            return None, "unavailable: npm install took over 300 s"
        if done.returncode != 0 or not script.is_file():
            return None, f"unavailable: npm install failed ({done.returncode}): {done.stderr.strip()[-500:]}"
    return [node, str(script)], f"{script}{note}"


def reference_version(argv: list[str]) -> str:
    try:
        data = json.loads((Path(argv[1]).parents[1] / "package.json").read_text())
        return f"{data['name']} {data['version']}"
    except (OSError, ValueError, KeyError, IndexError):
        return REFERENCE_PACKAGE


def reference_window(argv: list[str], root: Path, memory: Path, name: str) -> Window:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMESH_")}
    env["MEMORY_FILE_PATH"] = str(memory)
    return Window(argv, env, root, root / f"{name}.stderr", name)


# --------------------------------------------------------------------------- sections


def memesh_argv() -> tuple[list[str], str]:
    script = Path(sys.executable).parent / "memesh"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], str(script)
    return [sys.executable, "-m", "memesh"], f"{sys.executable} -m memesh (no console script next to the interpreter)"


def section_startup(args, root: Path, argv: list[str], ref: list[str] | None) -> Home:
    rule("1. proxy exec → initialize response (spawn to reply line, Claude Code's first line)")
    home = Home(root, "s")
    rows = []

    cold = []
    for i in range(args.cold_runs + 1):  # the first run (unmeasured) fills the bytecode cache
        window = home.window(argv)
        ms = window.initialize()
        window.close()
        home.stop_daemon()
        if i:
            cold.append(ms)
    rows.append(("cold: no daemon yet (window starts it)", cold))

    home.start_daemon()
    warm_up = home.window(argv)  # first exec after the daemon start: page cache, .pyc
    warm_up.initialize()
    warm_up.close()
    warm = []
    for _ in range(args.init_runs):
        window = home.window(argv)
        warm.append(window.initialize())
        window.close()
    rows.append(("daemon running (the figure)", warm))

    standalone = []
    for _ in range(args.standalone_runs):
        window = home.window(argv, standalone=True)
        standalone.append(window.initialize())
        window.close()
    rows.append(("standalone (MEMESH_DISABLE_DAEMON=1)", standalone))

    for label, extra in (("python floor: exec, answer one line", []), ("python floor with -I -S (no site)", ["-I", "-S"])):
        floor = []
        for _ in range(args.standalone_runs):
            window = home.window([sys.executable, *extra, "-c", FLOOR_SERVER])
            floor.append(window.initialize())
            window.close()
        rows.append((label, floor))

    if ref is not None:
        reference = []
        memory = root / "startup-memory.jsonl"
        memory.write_text("")
        for i in range(args.standalone_runs):
            window = reference_window(ref, root, memory, f"reference-start-{i}")
            reference.append(window.initialize())
            window.close()
        rows.append(("reference server (node), for context", reference))

    for label, values in rows:
        line = f"  {label:<40} {len(values):>3} runs   {summary(values, 0.9)}   min {fmt_ms(min(values)):>8}"
        if label.startswith("daemon running"):
            line += f"   {verdict(statistics.median(values), TARGETS['init'])}"
        print(line, flush=True)
    print("  (python floor: this interpreter starting, reading one line and answering it, which any Python"
          "\n  stdio server pays before its own imports)", flush=True)
    return home


def ping_series(window: Window, count: int, warm: int = 200) -> list[float]:
    times = []
    for i in range(warm + count):
        _, ms = window.request("ping", timeout=10.0)
        if i >= warm:
            times.append(ms)
    return times


def section_ping(args, home: Home, argv: list[str], ref: list[str] | None, root: Path) -> None:
    rule(f"2. ping round trip, one initialized window, {args.pings:,} sequential pings (after 200 unmeasured)")
    rows = []
    window = home.window(argv)
    window.initialize()
    through = ping_series(window, args.pings)
    window.close()
    rows.append(("through the proxy + daemon (the figure)", through))
    window = home.window(argv, standalone=True)
    window.initialize()
    rows.append(("standalone, for context", ping_series(window, args.pings)))
    window.close()
    if ref is not None:
        memory = root / "ping-memory.jsonl"
        memory.write_text("")
        window = reference_window(ref, root, memory, "reference-ping")
        window.initialize()
        rows.append(("reference server, for context", ping_series(window, args.pings)))
        window.close()
    for label, values in rows:
        line = f"  {label:<40} {summary(values)}   max {fmt_ms(max(values)):>9}"
        if label.startswith("through"):
            line += f"   {verdict(statistics.median(values), TARGETS['ping'])}"
        print(line, flush=True)


def tool_workload(window: Window, corpus: Corpus, calls: int, seed: int, cap_seconds: float | None,
                  warm: int) -> dict[str, tuple[list[float], str]]:
    """ms per call for search_nodes (and by query kind), open_nodes, add_observations.

    Each operation stops after ``calls`` calls or ``cap_seconds`` (then at least 5 calls)."""
    rng = random.Random(seed)
    queries = corpus.queries(calls + warm, seed)
    out: dict[str, tuple[list[float], str]] = {}

    def series(make: Callable[[int], tuple[str, dict]], total: int, check: Callable[[dict], bool] | None = None):
        times: list[float] = []
        misses = 0
        started = time.monotonic()
        for i in range(warm):
            window.call_tool(*make(i))
        for i in range(warm, warm + total):
            result, ms = window.call_tool(*make(i))
            times.append(ms)
            if check is not None and not check(result):
                misses += 1
            if cap_seconds is not None and time.monotonic() - started > cap_seconds and len(times) >= 5:
                break
        note = ""
        if len(times) < total:
            note = f"capped: {len(times)} calls in {time.monotonic() - started:.0f} s"
        if misses:
            note = (note + "; " if note else "") + f"{misses} returned nothing"
        return times, note

    def entities(result: dict) -> list:
        structured = result.get("structuredContent")
        if isinstance(structured, dict) and "entities" in structured:
            return structured["entities"]
        try:
            return json.loads(result["content"][0]["text"]).get("entities", [])
        except (KeyError, IndexError, ValueError, AttributeError):
            return []

    kinds: list[str] = []

    def search(i: int) -> tuple[str, dict]:
        kind, query = queries[i]
        kinds.append(kind)
        return "search_nodes", {"query": query}

    times, note = series(search, calls, lambda r: bool(entities(r)))
    out["search_nodes (mixed)"] = (times, note)
    measured = kinds[warm:]
    for kind in ("one word", "two words"):
        out[f"  {kind}"] = ([t for t, k in zip(times, measured) if k == kind], "")
    out["open_nodes (5 names)"] = series(lambda i: ("open_nodes", {"names": rng.sample(corpus.names, 5)}), calls,
                                         lambda r: len(entities(r)) == 5)
    stamp = f"{os.getpid()}-{seed}"
    out["add_observations (1)"] = series(
        lambda i: ("add_observations", {"observations": [{"entityName": rng.choice(corpus.names),
                                                          "contents": [f"Bench note {stamp}-{i} about the {rng.choice(WORDS)} review"]}]}),
        calls)
    return out


def section_tools(args, root: Path, argv: list[str], ref: list[str] | None) -> None:
    rule(f"3./4. tools/call latency through one initialized window, memesh vs the reference, ~{args.calls} calls each")
    print("  queries: half one word, half two adjacent words, taken from random observations (all hit);"
          "\n  open_nodes: 5 random names; add_observations: 1 new observation on a random entity."
          f"\n  memesh: {args.warm_calls} unmeasured calls per operation first; reference: 3; the reference is capped"
          f"\n  at {args.ref_cap:.0f} s per operation (it re-reads, and for writes rewrites, its whole file on every call).",
          flush=True)
    for size in args.sizes:
        corpus = Corpus(size)
        home = Home(root, f"g{size}")
        fill = corpus.fill_memesh(home)
        mb = len(corpus.text.encode()) / 1e6
        home.start_daemon()
        window = home.window(argv)
        window.initialize()
        ours = tool_workload(window, corpus, args.calls, seed=size, cap_seconds=None, warm=args.warm_calls)
        window.close()
        home.stop_daemon()
        theirs: dict[str, tuple[list[float], str]] = {}
        if ref is not None:
            memory = root / f"memory-{size}.jsonl"
            corpus.fill_reference(memory)
            window = reference_window(ref, root, memory, f"reference-{size}")
            window.initialize(timeout=60.0)
            theirs = tool_workload(window, corpus, args.calls, seed=size, cap_seconds=args.ref_cap, warm=3)
            window.close()
            memory.unlink()
        print(f"\n  {size:,} entities, {size // 4:,} relations ({mb:.1f} MB of JSONL; memesh filled by import_jsonl "
              f"in {fill:.1f} s)")
        print(f"  {'':<22} {'memesh p50':>12} {'p99':>10}   {'reference p50':>13} {'p99':>10}   {'ratio':>7}   target / note")
        for op, (times, note) in ours.items():
            p50 = statistics.median(times)
            cells = f"  {op:<22} {fmt_ms(p50):>12} {fmt_ms(pct(times, 0.99)):>10}"
            ref_note = ""
            if op in theirs and theirs[op][0]:
                rtimes, ref_note = theirs[op]
                r50 = statistics.median(rtimes)
                cells += f"   {fmt_ms(r50):>13} {fmt_ms(pct(rtimes, 0.99)):>10}   {ratio(r50, p50):>7}"
            else:
                cells += f"   {'—':>13} {'—':>10}   {'':>7}"
            notes = [n for n in (note, f"reference {ref_note}" if ref_note else "") if n]
            if op == "search_nodes (mixed)" and size >= 100_000:
                notes.insert(0, verdict(p50, TARGETS["search100k"]))
            print(cells + ("   " + "; ".join(notes) if notes else ""), flush=True)


def section_memory(args, root: Path, argv: list[str], ref: list[str] | None) -> None:
    rule("5. resident memory: daemon + N initialized, idle proxies (1,000-entity graph)")
    corpus = Corpus(1000, seed=5)
    home = Home(root, "m")
    corpus.fill_memesh(home)
    home.start_daemon()
    windows: list[Window] = []
    print(f"  {'N':>4} {'daemon RSS':>11} {'proxies RSS':>12} {'per proxy':>10} {'total RSS':>10}   "
          f"{'total PSS':>10} {'per proxy PSS':>14}", flush=True)
    for n in args.proxies:
        batch = [home.window(argv) for _ in range(n - len(windows))]
        for window in batch:
            window.send(CLAUDE_CODE_INITIALIZE)
        for window in batch:
            reply, _ = window.wait_reply(0, window.spawned, timeout=60.0)
            if "result" not in reply:
                raise BenchError(f"{window.name}: initialize failed: {reply}")
            window.send(INITIALIZED)
        windows += batch
        for window in windows:  # every one answers: connected and idle
            window.request("ping", timeout=30.0)
        time.sleep(1.0)
        pid = home.daemon_pid()
        if pid is None:
            raise BenchError("the daemon is gone")
        d_rss, d_pss = tree_rss(pid)
        sizes = [tree_rss(w.pid) for w in windows]
        p_rss = sum(s[0] for s in sizes)
        p_pss = sum(s[1] for s in sizes)
        print(f"  {n:>4} {d_rss / 1e6:>8.1f} MB {p_rss / 1e6:>9.1f} MB {p_rss / n / 1e6:>7.1f} MB "
              f"{(d_rss + p_rss) / 1e6:>7.1f} MB   {(d_pss + p_pss) / 1e6:>7.1f} MB {p_pss / n / 1e6:>11.1f} MB", flush=True)
    for window in windows:
        window.kill()
    home.stop_daemon()
    if ref is None:
        return
    memory = root / "memory-rss.jsonl"
    corpus.fill_reference(memory)
    refs: list[Window] = []
    print(f"\n  reference server: one node process per window (same 1,000-entity graph)")
    print(f"  {'N':>4} {'total RSS':>11} {'per window':>11}   {'total PSS':>10} {'per window PSS':>15}", flush=True)
    for n in args.ref_servers:
        batch = [reference_window(ref, root, memory, f"reference-rss-{len(refs) + i}") for i in range(n - len(refs))]
        for window in batch:
            window.send(CLAUDE_CODE_INITIALIZE)
        for window in batch:
            window.wait_reply(0, window.spawned, timeout=60.0)
            window.send(INITIALIZED)
        refs += batch
        for window in refs:
            window.call_tool("search_nodes", {"query": "review"}, timeout=30.0)  # graph loaded once, like a real session
        time.sleep(1.0)
        sizes = [tree_rss(w.pid) for w in refs]
        rss = sum(s[0] for s in sizes)
        pss = sum(s[1] for s in sizes)
        print(f"  {n:>4} {rss / 1e6:>8.1f} MB {rss / n / 1e6:>8.1f} MB   {pss / 1e6:>7.1f} MB {pss / n / 1e6:>12.1f} MB", flush=True)
    for window in refs:
        window.kill()


# --------------------------------------------------------------------------- main


def header(argv_note: str) -> None:
    from memesh import __version__

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        commit = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    node = "none"
    if shutil.which("node"):
        try:
            node = subprocess.run([shutil.which("node"), "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    print(f"memesh {__version__} (git {commit}) · Python {platform.python_version()} · SQLite {sqlite3.sqlite_version} · "
          f"{os.cpu_count()} CPUs · load {load} · {platform.system()} {platform.release()} · node {node}")
    print(f"window command: {argv_note}")
    if BYTECODE["cache"]:
        print("bytecode: memesh processes cache .pyc files in the temporary directory (PYTHONPYCACHEPREFIX), as an "
              "installed memesh reuses its .pyc" + ("; PYTHONDONTWRITEBYTECODE from the environment is dropped for them"
                                                     if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""))
    else:
        print(f"bytecode: inherited (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})")
    sys.stdout.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sizes 1k and 10k only, proxies 1 and 10")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="entity counts, e.g. 1000,10000,100000")
    parser.add_argument("--proxies", type=lambda s: [int(x) for x in s.split(",")], help="proxy counts, e.g. 1,10,50")
    parser.add_argument("--ref-servers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10],
                        help="reference server counts for the memory figure (default 1,10)")
    parser.add_argument("--init-runs", type=int, default=30, help="warm exec→initialize runs (default 30)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold-start runs, each starting a daemon (default 5)")
    parser.add_argument("--standalone-runs", type=int, default=10, help="standalone and reference start runs (default 10)")
    parser.add_argument("--pings", type=int, default=2000, help="sequential pings (default 2000)")
    parser.add_argument("--calls", type=int, default=200, help="calls per tool and size (default 200)")
    parser.add_argument("--warm-calls", type=int, default=20, help="unmeasured memesh calls per tool first (default 20)")
    parser.add_argument("--ref-cap", type=float, default=20.0, help="seconds per reference operation and size (default 20)")
    parser.add_argument("--reference", help="path of an installed reference server's dist/index.js")
    parser.add_argument("--reference-version", default="latest", help="npm version of the reference server to install")
    parser.add_argument("--no-reference", action="store_true", help="memesh only")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run memesh with the inherited bytecode settings (no .pyc cache in the temp dir)")
    parser.add_argument("--only", help="comma-separated sections to run: startup,ping,tools,memory")
    parser.add_argument("--budget", type=float, default=600.0, help="abort (and clean up) after this many seconds")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    if args.proxies is None:
        args.proxies = [1, 10] if args.quick else [1, 10, 50]
    args.proxies = sorted(set(args.proxies))
    args.ref_servers = sorted(set(args.ref_servers))
    args.only = set(args.only.split(",")) if args.only else {"startup", "ping", "tools", "memory"}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    BYTECODE["cache"] = not args.no_bytecode_cache
    started = time.monotonic()

    def on_signal(signum, frame):
        if signum == signal.SIGALRM:
            raise_or_defer(BudgetExceeded(f"the run exceeded --budget {args.budget:.0f} s"))
        else:
            raise_or_defer(KeyboardInterrupt())

    signal.signal(signal.SIGINT, on_signal)  # also where it was inherited ignored (a background job)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.setitimer(signal.ITIMER_REAL, args.budget)
    root = None
    try:
        root = Path(tempfile.mkdtemp(prefix="mb-", dir="/tmp"))
        argv_cmd, argv_note = memesh_argv()
        header(argv_note)
        ref, ref_note = find_reference(args, root)
        print(f"reference: {reference_version(ref) + ' · ' if ref else ''}{ref_note}", flush=True)
        home = None
        if "startup" in args.only or "ping" in args.only:
            home = section_startup(args, root, argv_cmd, ref) if "startup" in args.only else None
            if "ping" in args.only:
                if home is None:
                    home = Home(root, "s")
                    home.start_daemon()
                section_ping(args, home, argv_cmd, ref, root)
            home.stop_daemon()
        if "tools" in args.only:
            section_tools(args, root, argv_cmd, ref)
        if "memory" in args.only:
            section_memory(args, root, argv_cmd, ref)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\ntotal {time.monotonic() - started:.0f} s · load at the end {load}", flush=True)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    except (BenchError, BudgetExceeded, subprocess.TimeoutExpired) as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup(root)


if __name__ == "__main__":
    sys.exit(main())
