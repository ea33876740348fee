"""Tests for memesh.store.memory: remembering without duplicates, project scope, ranked
recall, filters, forgetting, paging, validation and concurrent use."""
from __future__ import annotations

import datetime
import pickle
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memesh.errors import ValidationError
from memesh.store import memory as memorymod
from memesh.store.db import Database
from memesh.store.memory import MemoryStore, fts_query, iso_utc, score
from tests.store.backends import open_backend

DAY = 86400.0
A, B = "/work/alpha", "/work/beta"


class Clock:
    """A settable time source, so recency is tested without waiting."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def storage(backend, tmp_path):
    """Fresh storage on each backend (SQLite and PostgreSQL)."""
    opened = open_backend(backend, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def database(storage):
    return storage.db


@pytest.fixture
def store(storage, clock):
    return type(storage.memory)(storage.db, clock=clock)


def contents(result):
    return [m["content"] for m in result["memories"]]


# -- remember ---------------------------------------------------------------------------
def test_a_new_memory_is_stored_with_defaults_normalised_tags_and_utc_timestamps(store, clock):
    memory = store.remember("  The CI runs on Python 3.11  ", tags=[" CI ", "python", "ci"], project=A)
    assert memory["created"] is True
    assert memory["content"] == "The CI runs on Python 3.11"
    assert memory["kind"] == "note" and memory["importance"] is None and memory["project"] == A
    assert memory["tags"] == ["ci", "python"]
    assert memory["createdAt"] == memory["updatedAt"] == iso_utc(clock.now)
    parsed = datetime.datetime.fromisoformat(memory["createdAt"].replace("Z", "+00:00"))
    assert parsed.utcoffset() == datetime.timedelta(0) and parsed.timestamp() == pytest.approx(clock.now)


def test_identical_content_in_the_same_project_is_stored_once_and_refreshed(store, clock):
    first = store.remember("Deploys go through staging", tags=["deploy"], kind="decision", importance=0.3, project=A)
    clock.now += DAY
    again = store.remember("Deploys go through staging\n", tags=["process"], kind="fact", importance=0.8, project=A)
    assert again["created"] is False and again["id"] == first["id"]
    assert again["tags"] == ["deploy", "process"]
    assert again["kind"] == "decision"           # the first kind stays
    assert again["importance"] == 0.8            # the larger importance wins
    assert again["createdAt"] == first["createdAt"] and again["updatedAt"] == iso_utc(clock.now)
    assert store.stats()["memories"] == 1
    lower = store.remember("Deploys go through staging", importance=0.1, project=A)
    assert lower["importance"] == 0.8


def test_the_same_content_in_another_project_is_a_separate_memory(store):
    first = store.remember("Use ruff for linting", project=A)
    second = store.remember("Use ruff for linting", project=B)
    assert second["created"] is True and second["id"] != first["id"]
    assert store.stats()["byProject"] == {A: 1, B: 1}


def test_project_paths_are_normalised_and_the_empty_project_means_none(store):
    assert store.remember("x", project="/work/alpha/./sub/../").get("project") == A
    assert store.remember("y", project="//work//beta/")["project"] == B
    assert store.remember("z")["project"] == ""


@pytest.mark.parametrize("call, field", [
    (lambda s: s.remember("   "), "content"),
    (lambda s: s.remember(42), "content"),
    (lambda s: s.remember("x" * (memorymod.MAX_CONTENT_CHARS + 1)), "content"),
    (lambda s: s.remember("x", importance=1.5), "importance"),
    (lambda s: s.remember("x", importance=True), "importance"),
    (lambda s: s.remember("x", tags="ci"), "tags"),
    (lambda s: s.remember("x", tags=["ok", " "]), "tags[1]"),
    (lambda s: s.remember("x", tags=[str(i) for i in range(memorymod.MAX_TAGS + 1)]), "tags"),
    (lambda s: s.remember("x", kind=""), "kind"),
    (lambda s: s.remember("x", project="relative/dir"), "project"),
    (lambda s: s.remember("\ud800 lone surrogate"), "content"),
    (lambda s: s.recall("x", limit=0), "limit"),
    (lambda s: s.recall("x", all_projects="yes"), "all_projects"),
    (lambda s: s.recall(None), "query"),
    (lambda s: s.list(limit=memorymod.MAX_LIST_LIMIT + 1), "limit"),
    (lambda s: s.list(cursor="not-a-cursor"), "cursor"),
    (lambda s: s.forget([1, True]), "ids[1]"),
    (lambda s: s.forget("1"), "ids"),
])
def test_bad_arguments_are_refused_with_a_message_naming_the_field(store, call, field):
    with pytest.raises(ValidationError) as caught:
        call(store)
    assert str(caught.value).startswith(f"{field}:")
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)
    assert store.stats()["memories"] == 0


# -- recall -----------------------------------------------------------------------------
def test_recall_puts_the_best_text_match_first(store):
    store.remember("The lock file lives in the home directory", project=A)
    store.remember("Flaky test: the lock test races with the daemon start; the lock test needs a barrier", project=A)
    store.remember("Coffee machine is on the third floor", project=A)
    found = store.recall("flaky lock test", project=A)
    assert contents(found)[0].startswith("Flaky test")
    assert len(found["memories"]) == 2  # the coffee machine shares no word with the query
    assert found["memories"][0]["score"] > found["memories"][1]["score"] > 0


def test_at_equal_relevance_the_more_recent_memory_ranks_first(store, clock):
    store.remember("release checklist: bump the version", project=A)
    clock.now += 90 * DAY
    store.remember("release checklist: tag the commit", project=A)
    assert contents(store.recall("release checklist", project=A)) == [
        "release checklist: tag the commit", "release checklist: bump the version"]


def test_at_equal_relevance_and_age_the_more_important_memory_ranks_first(store):
    store.remember("database backups run nightly", importance=0.1, project=A)
    store.remember("database migrations run at start", importance=0.9, project=A)
    assert contents(store.recall("database run", project=A))[0] == "database migrations run at start"


def test_the_ranking_formula_is_the_documented_one():
    assert score(1.0, 0.0, None) == pytest.approx(1.0)
    assert score(1.0, 30 * DAY, 0.5) == pytest.approx(0.75)          # one half-life
    assert score(0.5, 0.0, 1.0) == pytest.approx(0.75)
    assert score(1.0, 10_000 * DAY, 0.0) == pytest.approx(0.25, abs=1e-6)
    assert score(1.0, -5.0, None) == score(1.0, 0.0, None)           # a clock step back is "now"


def test_recall_stays_in_the_current_project_unless_asked_for_all(store):
    store.remember("pytest runs with -x in CI", project=A)
    store.remember("pytest is configured in pytest.ini", project=B)
    store.remember("pytest plugins are pinned", project=B)
    assert contents(store.recall("pytest", project=A)) == ["pytest runs with -x in CI"]
    everywhere = store.recall("pytest", project=A, all_projects=True)
    assert everywhere["allProjects"] is True and everywhere["project"] == A
    assert [m["project"] for m in everywhere["memories"]] == [A, B, B]


def test_an_empty_query_returns_the_newest_memories_current_project_first(store, clock):
    for n, project in enumerate([A, B, A, B]):
        clock.now += 1
        store.remember(f"memory {n}", project=project)
    assert contents(store.recall("", project=A)) == ["memory 2", "memory 0"]
    newest = store.recall("  ", project=A, all_projects=True, limit=3)
    assert contents(newest) == ["memory 2", "memory 0", "memory 3"]
    assert all("score" not in m for m in newest["memories"])


def test_tags_filter_keeps_memories_with_all_given_tags_and_kind_filters_exactly(store):
    store.remember("retry the upload twice", tags=["ci", "network"], kind="decision", project=A)
    store.remember("upload size limit is 10 MiB", tags=["network"], project=A)
    store.remember("upload job is in ci.yml", tags=["ci"], project=A)
    assert contents(store.recall("upload", project=A, tags=["CI", "network"])) == ["retry the upload twice"]
    assert contents(store.recall("upload", project=A, kind="decision")) == ["retry the upload twice"]
    assert sorted(contents(store.list(project=A, tags=["ci"]))) == ["retry the upload twice", "upload job is in ci.yml"]


def test_tags_are_searched_as_words(store):
    store.remember("see the notes in the wiki", tags=["flaky-test"], project=A)
    assert contents(store.recall("flaky", project=A)) == ["see the notes in the wiki"]


def test_recall_finds_inflected_words_and_ignores_case(store):
    store.remember("We DEPLOYED the daemon on Monday", project=A)
    assert contents(store.recall("deploying", project=A)) == ["We DEPLOYED the daemon on Monday"]


@pytest.mark.parametrize("query", [
    '"', "'", "(", ")", "*", "NEAR(a b)", "a OR", "AND", "NOT x", "col:x", "^x", "x + y", "-", '""',
    "\x00", "🙂", "日本語", "a\"b", "{x}", "[1]", "\\", "%_", "OR OR OR",
])
def test_no_query_is_taken_as_fts_syntax(store, query):
    store.remember("NEAR and OR are ordinary words here, as is AND", project=A)
    result = store.recall(query, project=A, all_projects=True)
    assert isinstance(result["memories"], list)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60))
def test_any_text_is_a_valid_query(store, query):
    try:
        store.recall(query, project=A, all_projects=True)
    except ValidationError as exc:  # only lone surrogates are refused, and named
        assert str(exc).startswith("query:")


def test_a_query_without_any_word_finds_nothing():
    assert fts_query("!!! ... ???") is None
    assert fts_query("Flaky flaky TEST") == '"flaky" OR "test"'


# -- forget, list, stats ------------------------------------------------------------------
def test_forget_deletes_the_given_ids_ignores_unknown_ones_and_removes_them_from_search(store):
    keep = store.remember("keep this one about parsers", project=A)
    drop = store.remember("drop this one about parsers", tags=["tmp"], project=A)
    assert store.forget([drop["id"], 999_999, drop["id"]]) == {"deleted": 1}
    assert contents(store.recall("parsers", project=A)) == [keep["content"]]
    assert store.stats() == {"memories": 1, "projects": 1, "tags": 0, "byProject": {A: 1}}
    assert store.forget([]) == {"deleted": 0}


def test_list_pages_through_every_memory_once_newest_first(store, clock):
    for n in range(23):
        clock.now += 1 if n % 5 else 0  # some share a timestamp: the id breaks the tie
        store.remember(f"note {n}", project=A)
    store.remember("elsewhere", project=B)
    seen, cursor, pages = [], None, 0
    while True:
        page = store.list(project=A, limit=5, cursor=cursor)
        seen += [m["id"] for m in page["memories"]]
        pages += 1
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert pages == 5 and len(seen) == len(set(seen)) == 23
    assert seen == sorted(seen, reverse=True)
    assert len(store.list(all_projects=True, limit=500)["memories"]) == 24


def test_a_list_cursor_only_continues_the_listing_it_came_from(store):
    for n in range(3):
        store.remember(f"n{n}", tags=["t"], project=A)
    cursor = store.list(project=A, limit=1)["nextCursor"]
    with pytest.raises(ValidationError, match="^cursor:"):
        store.list(project=A, limit=1, tags=["t"], cursor=cursor)
    with pytest.raises(ValidationError, match="^cursor:"):
        store.list(project=B, limit=1, cursor=cursor)


def test_pages_and_recall_results_stay_under_the_output_ceiling(store):
    big = "x" * (memorymod.MAX_CONTENT_CHARS - 20)
    for n in range(12):
        store.remember(f"{big} {n} bulky", project=A)
    page = store.list(project=A, limit=12)
    assert 1 <= len(page["memories"]) < 12 and "nextCursor" in page
    recalled = store.recall("bulky", project=A, limit=12)
    assert len(recalled["memories"]) + recalled["omitted"] == 12
    for result in (page, recalled):
        assert len(memorymod.json.dumps(result)) < memorymod.MAX_RESULT_CHARS


@pytest.mark.parametrize("query", ["bulky", ""])
def test_the_memories_recall_leaves_out_are_reached_through_its_cursor(store, query):
    big = "x" * (memorymod.MAX_CONTENT_CHARS - 20)
    for n in range(12):
        store.remember(f"{big} {n} bulky", project=A)
    seen, cursor, pages = [], None, 0
    while True:
        result = store.recall(query, project=A, limit=12, cursor=cursor)
        assert len(memorymod.json.dumps(result)) < memorymod.MAX_RESULT_CHARS
        seen += [m["id"] for m in result["memories"]]
        pages += 1
        cursor = result.get("nextCursor")
        assert (cursor is None) == ("omitted" not in result)
        if cursor is None:
            break
        assert pages < 20
    assert pages > 1 and len(seen) == len(set(seen)) == 12
    with pytest.raises(ValidationError, match="^cursor:"):
        store.recall("other words", project=A, limit=12, cursor=store.recall(query, project=A, limit=12)["nextCursor"])


# -- sharing ------------------------------------------------------------------------------
def test_concurrent_remembers_of_the_same_text_store_it_once(storage):
    store, errors, results = storage.memory, [], []
    barrier = threading.Barrier(8)

    def work() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(store.remember("one truth", tags=[threading.current_thread().name], project=A))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, name=f"t{n}") for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert sum(r["created"] for r in results) == 1 and len({r["id"] for r in results}) == 1
    assert len(store.recall("truth", project=A)["memories"][0]["tags"]) == 8


def test_a_second_store_on_the_same_file_sees_the_first_ones_writes(tmp_path):
    first_db, second_db = Database(tmp_path / "m.db"), Database(tmp_path / "m.db")
    try:
        MemoryStore(first_db).remember("written by one process", project=A)
        assert contents(MemoryStore(second_db).recall("written", project=A)) == ["written by one process"]
    finally:
        first_db.close()
        second_db.close()
